// Package agents is the code Pacemaker and DRBD run on every action:
// haconf's OCF resource agents (OCF resource agent API 1.1, run by
// Pacemaker 2.1) and DRBD's fence-peer handler, one file each:
//
//   - drbd.go: ocf:haconf:drbd, the DRBD resource as a promotable clone
//     (DRBD 8.4 and 9 with drbd-utils 9.x)
//   - fs.go: ocf:haconf:fs, the ext4 or xfs filesystem on the DRBD device
//   - mariadb.go: ocf:haconf:mariadb, MariaDB 10.5-11.x (MySQL 8.0) on it
//   - rabbitmq.go: ocf:haconf:rabbitmq, a RabbitMQ 3.x node run as a clone
//   - vip.go: ocf:haconf:vip, the API's virtual IPv4 address
//   - daemon.go: ocf:haconf:daemon, a plain foreground daemon (haproxy,
//     haconf compute controller) started directly, without a login shell
//   - fencepeer.go: DRBD 8.4's fence-peer handler, crm-fence-peer.sh's
//     constraint placed with one cibadmin
//
// The agents are adapters: the OCF protocol (pacemaker.RunAgent) over the
// layer packages, which parse, speak the protocols and run the tools
// (drbd.Adm runs drbdadm and drbdsetup, pacemaker.Cluster crm_attribute
// and cibadmin, mysql and rabbitmq the servers' handshakes, internal/proc
// reads /proc).
//
// Both haconf (haconf ocf, haconf drbd fence-peer) and haconf-agent run
// it. haconf-agent is this package alone: it starts in half haconf's time
// (on a User-Mode Linux lab node 130 ms instead of 280 ms), which every
// start, promote and monitor pays and a takeover pays in series (promote,
// the fence-peer handler, mount, MariaDB). The rendered wrappers run
// haconf-agent where it is installed and haconf otherwise.
package agents

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/haconf/haconf/internal/runner"
	"github.com/haconf/haconf/pacemaker"
)

// Runner runs one command and returns its standard output: runner.Exec
// in production, a fake in tests.
type Runner interface {
	Run(ctx context.Context, name string, args ...string) ([]byte, error)
}

// OCF are the resource agents haconf implements; bootstrap installs a
// wrapper for each as /usr/lib/ocf/resource.d/haconf/NAME.
var OCF = map[string]func(env pacemaker.OCFEnv, stderr io.Writer) pacemaker.Agent{
	"mariadb": func(env pacemaker.OCFEnv, _ io.Writer) pacemaker.Agent {
		a := MariaDBFromEnv(env)
		a.Daemon = runner.Exec{}.StartDaemon
		return a
	},
	"daemon": func(env pacemaker.OCFEnv, _ io.Writer) pacemaker.Agent {
		a := DaemonFromEnv(env)
		a.Spawn = runner.Exec{}.StartDaemon
		return a
	},
	"vip": func(env pacemaker.OCFEnv, _ io.Writer) pacemaker.Agent {
		return VIPFromEnv(env, runner.Exec{})
	},
	"fs": func(env pacemaker.OCFEnv, stderr io.Writer) pacemaker.Agent {
		a := FSFromEnv(env, runner.Exec{})
		// Stderr goes to Pacemaker's log: which processes stop killed.
		a.Log = slog.New(slog.NewTextHandler(stderr, nil)).With("agent", "fs", "resource", env.Getenv("OCF_RESOURCE_INSTANCE"))
		return a
	},
	"drbd": func(env pacemaker.OCFEnv, _ io.Writer) pacemaker.Agent {
		return DRBDFromEnv(env, runner.Exec{})
	},
	"rabbitmq": func(env pacemaker.OCFEnv, stderr io.Writer) pacemaker.Agent {
		a := RabbitMQFromEnv(env)
		a.Daemon = runner.Exec{}.StartDaemon
		// Stderr goes to Pacemaker's log: what start and stop did.
		a.Log = slog.New(slog.NewTextHandler(stderr, nil)).With("agent", "rabbitmq", "resource", env.Getenv("OCF_RESOURCE_INSTANCE"))
		return a
	},
}

// launcher is an agent whose start leaves a process behind that runs the
// agent's binary again with the action LaunchAction.
type launcher interface {
	Launch(ctx context.Context) error
}

// Names are OCF's names, sorted.
func Names() []string {
	names := make([]string, 0, len(OCF))
	for n := range OCF {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// RunOCF runs action of the agent name with the OCF environment and
// returns the OCF exit code.
func RunOCF(ctx context.Context, name, action string, getenv func(string) string, stdout, stderr io.Writer) int {
	mk, ok := OCF[name]
	if !ok {
		fmt.Fprintf(stderr, "ocf-exit-reason:unknown agent %q (have: %s)\n", name, strings.Join(Names(), ", "))
		return pacemaker.OCFErrInstalled
	}
	env := pacemaker.OCFEnv{Getenv: getenv}
	log := slog.New(slog.NewTextHandler(stderr, nil)).With("agent", name, "resource", getenv("OCF_RESOURCE_INSTANCE"))
	a := mk(env, stderr)
	if l, ok := a.(launcher); ok && action == LaunchAction {
		// Not Pacemaker's: the process an agent's start leaves behind.
		if err := l.Launch(ctx); err != nil {
			log.Error("launch failed", "err", err)
			return pacemaker.OCFErrGeneric
		}
		return pacemaker.OCFSuccess
	}
	return pacemaker.RunAgent(ctx, a, action, env, stdout, stderr, log)
}

// HandlerLog is where the DRBD handlers note what they did: a handler run
// by the kernel has its output lost otherwise.
const HandlerLog = "/var/log/haconf/drbd-handlers.log"

// FencePeer runs DRBD's fence-peer handler (see FenceHandler). DRBD runs
// it with DRBD_RESOURCE and DRBD_MINOR set and reads the exit code; what
// it did goes to stderr and to HandlerLog.
func FencePeer(ctx context.Context, getenv func(string) string, clone string, timeout time.Duration, stderr io.Writer) int {
	if getenv("DRBD_RESOURCE") == "" {
		fmt.Fprintln(stderr, "DRBD_RESOURCE is not set: DRBD runs this handler (fence-peer in the resource's handlers section)")
		return FenceFailed
	}
	f := FenceHandlerFromEnv(getenv, clone, runner.Exec{Timeout: 30 * time.Second})
	f.Timeout = timeout
	start := time.Now()
	code, what := f.Fence(ctx)
	line := fmt.Sprintf("%s fence-peer %s: exit %d after %v: %s\n", time.Now().Format(time.RFC3339Nano), f.Resource, code, time.Since(start).Round(time.Millisecond), what)
	fmt.Fprint(stderr, line)
	if err := os.MkdirAll("/var/log/haconf", 0o755); err == nil {
		if lf, err := os.OpenFile(HandlerLog, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
			lf.WriteString(line)
			lf.Close()
		}
	}
	return code
}
