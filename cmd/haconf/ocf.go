package main

import (
	"log/slog"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/haconf/haconf/drbd"
	"github.com/haconf/haconf/internal/runner"
	"github.com/haconf/haconf/mysql"
	"github.com/haconf/haconf/pacemaker"
	"github.com/haconf/haconf/rabbitmq"
	"github.com/haconf/haconf/vip"
)

// ocfAgents are the resource agents haconf implements; bootstrap installs
// a wrapper for each as /usr/lib/ocf/resource.d/haconf/NAME.
var ocfAgents = map[string]func(pacemaker.OCFEnv) pacemaker.Agent{
	"mariadb": func(env pacemaker.OCFEnv) pacemaker.Agent {
		a := mysql.AgentFromEnv(env)
		a.Daemon = runner.Exec{}.StartDaemon
		return a
	},
	"vip": func(env pacemaker.OCFEnv) pacemaker.Agent { return vip.AgentFromEnv(env, runner.Exec{}) },
	"fs": func(env pacemaker.OCFEnv) pacemaker.Agent {
		a := drbd.FSAgentFromEnv(env, runner.Exec{})
		// Stderr goes to Pacemaker's log: which processes stop killed.
		a.Log = slog.New(slog.NewTextHandler(os.Stderr, nil)).With("agent", "fs", "resource", env.Getenv("OCF_RESOURCE_INSTANCE"))
		return a
	},
	"drbd": func(env pacemaker.OCFEnv) pacemaker.Agent { return drbd.AgentFromEnv(env, runner.Exec{}) },
	"rabbitmq": func(env pacemaker.OCFEnv) pacemaker.Agent {
		a := rabbitmq.AgentFromEnv(env)
		a.Daemon = runner.Exec{}.StartDaemon
		// Stderr goes to Pacemaker's log: what start and stop did.
		a.Log = slog.New(slog.NewTextHandler(os.Stderr, nil)).With("agent", "rabbitmq", "resource", env.Getenv("OCF_RESOURCE_INSTANCE"))
		return a
	},
}

func newOCFCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "ocf AGENT ACTION",
		Short: "Run one action of a haconf OCF resource agent (called by Pacemaker)",
		Long: `Pacemaker runs haconf's resource agents (ocf:haconf:mariadb, ocf:haconf:vip,
ocf:haconf:fs, ocf:haconf:drbd, ocf:haconf:rabbitmq) through wrappers in
/usr/lib/ocf/resource.d/haconf/ that exec this command.
Parameters come from OCF_RESKEY_* environment variables; the exit status is
the OCF code (0 ok, 7 not running, 1 failed, ...).`,
		Example: `  OCF_RESKEY_ip=10.251.0.10 OCF_RESKEY_cidr_netmask=24 haconf ocf vip monitor
  OCF_RESKEY_device=/dev/drbd0 OCF_RESKEY_directory=/srv/haconf OCF_RESKEY_fstype=ext4 haconf ocf fs monitor
  haconf ocf mariadb meta-data
  OCF_RESKEY_nodename=rabbit@ctl1 haconf ocf rabbitmq monitor`,
		Hidden:    true,
		Args:      cobra.ExactArgs(2),
		ValidArgs: ocfAgentNames(),
		RunE: func(cmd *cobra.Command, args []string) error {
			mk, ok := ocfAgents[args[0]]
			if !ok {
				cmd.PrintErrf("ocf-exit-reason:unknown agent %q (have: %s)\n", args[0], strings.Join(ocfAgentNames(), ", "))
				return silentExit(pacemaker.OCFErrInstalled)
			}
			env := pacemaker.OCFEnv{Getenv: os.Getenv}
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil)).With("agent", args[0], "resource", os.Getenv("OCF_RESOURCE_INSTANCE"))
			code := pacemaker.RunAgent(cmd.Context(), mk(env), args[1], env, cmd.OutOrStdout(), cmd.ErrOrStderr(), log)
			if code != 0 {
				return silentExit(code)
			}
			return nil
		},
	}
}

// ocfAgentNames are ocfAgents' names, sorted.
func ocfAgentNames() []string {
	names := make([]string, 0, len(ocfAgents))
	for n := range ocfAgents {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}
