package lab

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/haconf/haconf/internal/atomicfile"
	"github.com/haconf/haconf/templates"
)

// Packages are the Debian packages the host needs: the lab's own tools,
// and everything the nodes run (they see the host's / as their lower layer).
var Packages = []string{
	"user-mode-linux", "kmod", "busybox", "iproute2", "e2fsprogs", "util-linux",
	"lvm2", "drbd-utils", "corosync", "pacemaker", "pacemaker-cli-utils", "resource-agents",
	"mariadb-server", "rabbitmq-server", "haproxy",
	// What haconf bootstrap checks for in the nodes (bootstrap.Packages).
	"fence-agents", "iputils-ping", "iputils-clockdiff", "ipmitool",
}

// missingPackages returns the members of pkgs that dpkg does not report
// as installed.
func (l *Lab) missingPackages(ctx context.Context, pkgs []string) []string {
	args := append([]string{"-W", "-f", "${Package} ${db:Status-Status}\n"}, pkgs...)
	// dpkg-query exits 1 when a package is unknown; what it printed still counts.
	out, _ := l.Run.Run(ctx, "dpkg-query", args...)
	installed := map[string]bool{}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && f[1] == "installed" {
			installed[f[0]] = true
		}
	}
	var missing []string
	for _, p := range pkgs {
		if !installed[p] {
			missing = append(missing, p)
		}
	}
	return missing
}

// EnsurePackages installs the missing Packages with apt-get.
func (l *Lab) EnsurePackages(ctx context.Context) error {
	missing := l.missingPackages(ctx, Packages)
	if len(missing) == 0 {
		return nil
	}
	l.logger().Info("installing Debian packages", "packages", missing)
	ctx, cancel := context.WithTimeout(ctx, 15*time.Minute)
	defer cancel()
	install := append([]string{"DEBIAN_FRONTEND=noninteractive", "apt-get", "install", "-y", "-q", "--no-install-recommends"}, missing...)
	if _, err := l.Run.Run(ctx, "env", install...); err != nil {
		l.logger().Info("apt-get install failed, updating package lists", "err", err)
		if _, err := l.Run.Run(ctx, "apt-get", "update", "-q"); err != nil {
			return fmt.Errorf("install lab packages: %w", err)
		}
		if _, err := l.Run.Run(ctx, "env", install...); err != nil {
			return fmt.Errorf("install lab packages: %w", err)
		}
	}
	if still := l.missingPackages(ctx, missing); len(still) > 0 {
		return fmt.Errorf("install lab packages: still missing %v", still)
	}
	return nil
}

// Up builds and boots the lab, or completes it: every step leaves what
// already exists alone, so running it twice is harmless. It returns when
// both nodes answer.
func (l *Lab) Up(ctx context.Context) error {
	if err := checkDir(l.Dir); err != nil {
		return err
	}
	if l.Binary == "" || l.LabBinary == "" {
		return errors.New("lab up: no haconf and haconf-lab binaries to install into the nodes")
	}
	start := time.Now()
	if err := l.EnsurePackages(ctx); err != nil {
		return err
	}
	// 0711: others may not list the lab directory but may reach bin/, whose
	// haconf-agent, haconf and haconf-lab (the fence agent) Pacemaker may
	// run as hacluster. The token,
	// secrets and node directories inside stay 0600/0700.
	if err := os.MkdirAll(l.Dir, 0o711); err != nil {
		return err
	}
	if err := os.Chmod(l.Dir, 0o711); err != nil {
		return err
	}
	if err := l.ensureToken(); err != nil {
		return err
	}
	s, _ := json.Marshal(settings{Memory: l.memory()})
	if _, err := atomicfile.WriteIfChanged(l.settingsFile(), append(s, '\n'), 0o600); err != nil {
		return err
	}
	if err := l.installBinary(); err != nil {
		return err
	}
	for _, n := range Nodes {
		if err := l.writeBootFiles(n); err != nil {
			return err
		}
		if err := l.ensureDisks(ctx, n); err != nil {
			return err
		}
	}
	if err := l.setupNetwork(ctx); err != nil {
		return err
	}
	if err := l.startFenced(ctx); err != nil {
		return err
	}
	c, err := l.Client()
	if err != nil {
		return err
	}
	for _, n := range Nodes {
		if _, ok := l.Running(n); ok {
			continue
		}
		if _, err := c.Power(ctx, FencedURL(), n.Name, "on"); err != nil {
			return fmt.Errorf("boot %s: %w", n.Name, err)
		}
	}
	var wg sync.WaitGroup
	errs := make([]error, len(Nodes))
	for i, n := range Nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = l.waitAnswer(ctx, n)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	l.logger().Info("lab is up", "dir", l.Dir, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

func (l *Lab) ensureToken() error {
	if _, err := os.Stat(l.tokenFile()); err == nil {
		return nil
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return err
	}
	return atomicfile.Write(l.tokenFile(), []byte(hex.EncodeToString(b)+"\n"), 0o600)
}

// installBinary copies the haconf and haconf-lab binaries into the lab,
// where the nodes run them, and haconf-agent from beside haconf when it is
// there (the resource agents' wrappers fall back to haconf without it).
func (l *Lab) installBinary() error {
	labSrc, err := filepath.Abs(l.LabBinary)
	if err != nil {
		return err
	}
	if err := installFile(labSrc, l.labBinPath()); err != nil {
		return fmt.Errorf("install haconf-lab binary: %w", err)
	}
	src, err := filepath.Abs(l.Binary)
	if err != nil {
		return err
	}
	if err := installFile(src, l.binPath()); err != nil {
		return fmt.Errorf("install haconf binary: %w", err)
	}
	agent := filepath.Join(filepath.Dir(src), templates.AgentBinName)
	if _, err := os.Stat(agent); err != nil {
		l.logger().Info("no haconf-agent beside the haconf binary: the nodes' resource agents run haconf", "looked_for", agent)
		if err := os.Remove(l.agentBinPath()); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	}
	if err := installFile(agent, l.agentBinPath()); err != nil {
		return fmt.Errorf("install haconf-agent: %w", err)
	}
	return nil
}

// installFile copies the executable src to dst unless dst is src or holds
// the same bytes.
func installFile(src, dst string) error {
	if src == dst {
		return nil
	}
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	if old, err := os.ReadFile(dst); err == nil && bytes.Equal(old, b) {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	// The binaries hold no secret; hacluster must be able to run them.
	return atomicfile.Write(dst, b, 0o755)
}

// FencedRunning reports whether the fence daemon runs, and its pid.
func (l *Lab) FencedRunning() (int, bool) { return alive(l.fencedPidFile(), "fenced") }

// startFenced starts the fence daemon unless it runs, and waits until it
// answers.
func (l *Lab) startFenced(ctx context.Context) error {
	if _, ok := l.FencedRunning(); ok {
		return l.waitFenced(ctx)
	}
	argv := []string{l.labBinPath(), "fenced", "--dir", l.Dir}
	pid, err := spawn(argv, nil, l.path("fenced.log"), l.fencedPidFile())
	if err != nil {
		return fmt.Errorf("start fence daemon: %w", err)
	}
	l.logger().Info("started fence daemon", "pid", pid, "url", FencedURL())
	return l.waitFenced(ctx)
}

func (l *Lab) waitFenced(ctx context.Context) error {
	c, err := l.Client()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	for {
		_, err := c.PowerStatus(ctx, FencedURL(), Nodes[0].Name)
		if err == nil {
			return nil
		}
		if _, ok := l.FencedRunning(); !ok {
			return fmt.Errorf("fence daemon died (see %s): %w", l.path("fenced.log"), err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("fence daemon does not answer: %w", err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Down stops everything the lab started (the nodes, the fence daemon) by
// pid and deletes its interfaces. The disks stay unless purge is set, in
// which case the whole lab directory goes.
func (l *Lab) Down(ctx context.Context, purge bool) error {
	if err := checkDir(l.Dir); err != nil {
		return err
	}
	var errs []error
	for _, n := range Nodes {
		if pid, ok := l.Running(n); ok {
			// Flush the node's filesystems; then it is a power-off.
			sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			if _, err := l.Exec(sctx, n.Name, "sync"); err != nil {
				l.logger().Debug("sync before stop failed", "node", n.Name, "err", err)
			}
			cancel()
			if err := l.Crash(ctx, n.Name); err != nil {
				errs = append(errs, fmt.Errorf("stop %s: %w", n.Name, err))
			} else {
				l.logger().Info("stopped node", "node", n.Name, "pid", pid)
			}
		}
		os.Remove(l.pidFile(n))
	}
	if pid, ok := l.FencedRunning(); ok {
		if err := killGroup(pid, 10*time.Second); err != nil {
			errs = append(errs, fmt.Errorf("stop fence daemon: %w", err))
		} else {
			l.logger().Info("stopped fence daemon", "pid", pid)
		}
	}
	os.Remove(l.fencedPidFile())
	if err := l.teardownNetwork(ctx); err != nil {
		errs = append(errs, err)
	}
	if err := os.RemoveAll(l.umlDir()); err != nil {
		errs = append(errs, err)
	}
	if m := mountsUnder(l.Dir); len(m) > 0 {
		errs = append(errs, fmt.Errorf("mounts left under %s: %v", l.Dir, m))
	}
	if purge && len(errs) == 0 {
		if _, err := os.Stat(l.settingsFile()); err == nil {
			if err := os.RemoveAll(l.Dir); err != nil {
				errs = append(errs, err)
			}
			l.logger().Info("removed lab directory", "dir", l.Dir)
		} else if !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// mountsUnder lists the host's mount points inside dir.
func mountsUnder(dir string) []string {
	b, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return nil
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 1 && (f[1] == dir || strings.HasPrefix(f[1], dir+"/")) {
			out = append(out, f[1])
		}
	}
	return out
}

// Status is the lab at a glance.
type Status struct {
	Dir     string       `json:"dir"`
	Up      bool         `json:"up"` // both nodes answer and the fence daemon runs
	Fenced  DaemonStatus `json:"fenced"`
	Bridges []IfStatus   `json:"bridges"`
	Nodes   []NodeStatus `json:"nodes"`
}

// DaemonStatus is a host-side lab process.
type DaemonStatus struct {
	Running bool   `json:"running"`
	PID     int    `json:"pid,omitempty"`
	URL     string `json:"url"`
}

// IfStatus is one host interface of the lab.
type IfStatus struct {
	Name   string `json:"name"`
	Exists bool   `json:"exists"`
	Up     bool   `json:"up"`
}

// NodeStatus is one node.
type NodeStatus struct {
	Name      string            `json:"name"`
	Running   bool              `json:"running"`
	PID       int               `json:"pid,omitempty"`
	Answering bool              `json:"answering"`
	Mgmt      string            `json:"management"`
	Storage   string            `json:"storage"`
	Control   string            `json:"control"`
	Links     map[string]string `json:"links"` // mgmt/storage: connected, cut or missing
}

// Status reports what runs and which links are cut.
func (l *Lab) Status(ctx context.Context) (Status, error) {
	st := Status{Dir: l.Dir, Fenced: DaemonStatus{URL: FencedURL()}}
	have, err := l.links(ctx)
	if err != nil {
		return st, err
	}
	for _, b := range bridges {
		k, ok := have[b.name]
		st.Bridges = append(st.Bridges, IfStatus{Name: b.name, Exists: ok, Up: ok && k.up()})
	}
	st.Fenced.PID, st.Fenced.Running = l.FencedRunning()
	c, cerr := l.Client()
	st.Up = st.Fenced.Running
	for _, n := range Nodes {
		ns := NodeStatus{Name: n.Name, Mgmt: n.Mgmt.String(), Storage: n.Storage.String(), Control: n.Control.String(), Links: map[string]string{}}
		ns.PID, ns.Running = l.Running(n)
		if !ns.Running {
			ns.PID = 0
		}
		if ns.Running && cerr == nil {
			pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			ns.Answering = c.Ping(pctx, n.Name) == nil
			cancel()
		}
		for _, b := range bridges {
			k, ok := have[n.Tap(b.link)]
			switch {
			case !ok:
				ns.Links[b.link] = "missing"
			case k.Master == b.name:
				ns.Links[b.link] = "connected"
			default:
				ns.Links[b.link] = "cut"
			}
		}
		st.Up = st.Up && ns.Answering
		st.Nodes = append(st.Nodes, ns)
	}
	return st, nil
}
