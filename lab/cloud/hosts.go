package cloud

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/haconf/haconf/internal/proc"
	"github.com/haconf/haconf/lab"
)

// Power is a compute host's power state as the lab's BMC sees it.
type Power string

const (
	PowerOn  Power = "on"
	PowerOff Power = "off"
)

// power reads h's power state: on from start (or up) until a crash.
func (c *Cloud) power(h Host) Power {
	b, err := os.ReadFile(c.powerFile(h))
	if err == nil && strings.TrimSpace(string(b)) == string(PowerOn) && namespaceExists(h) {
		return PowerOn
	}
	return PowerOff
}

func (c *Cloud) setPower(h Host, p Power) error {
	if err := os.MkdirAll(c.hostDir(h), 0o700); err != nil {
		return err
	}
	return os.WriteFile(c.powerFile(h), []byte(p+"\n"), 0o600)
}

// host returns the host called name when the cloud has it.
func (c *Cloud) host(name string) (Host, settings, error) {
	h, err := ParseHost(name)
	if err != nil {
		return h, settings{}, err
	}
	s, err := c.loadSettings()
	if err != nil {
		return h, s, err
	}
	if h.Index > s.Hosts {
		return h, s, fmt.Errorf("%w: %q (the cloud has cmp1 to cmp%d)", ErrUnknownHost, name, s.Hosts)
	}
	return h, s, nil
}

// powerOn boots h: its links come up and nova-compute starts, as after a
// reboot (a running nova-compute is left alone).
func (c *Cloud) powerOn(ctx context.Context, h Host) error {
	if err := c.setupHostNet(ctx, h); err != nil {
		return err
	}
	if err := c.setLinks(ctx, h, lab.LinkAll, true); err != nil {
		return err
	}
	for _, d := range []string{"state", "state/lock"} {
		if err := os.MkdirAll(filepath.Join(c.hostDir(h), d), 0o700); err != nil {
			return err
		}
	}
	if err := c.setPower(h, PowerOn); err != nil {
		return err
	}
	if _, ok := c.running(computeService(h)); !ok {
		if _, err := c.spawn(service{Name: computeService(h), Argv: []string{"ip", "netns", "exec", h.Namespace(), Python, "-c", novaComputeLauncher,
			"--config-file", c.path("etc", "nova", "nova.conf"), "--config-file", c.path("etc", "nova", h.Name+".conf")}}); err != nil {
			return err
		}
	}
	if s, err := c.loadSettings(); err == nil && s.HA {
		return c.startAgent(h)
	}
	return nil
}

// Start boots host name again after a crash. It returns once nova-compute
// runs; Nova sees the service up at its first report (report_interval).
func (c *Cloud) Start(ctx context.Context, name string) error {
	h, _, err := c.host(name)
	if err != nil {
		return err
	}
	if _, ok := c.running(svcRabbit); !ok {
		return fmt.Errorf("%w: its control plane does not run (haconf-lab compute up)", ErrNotUp)
	}
	if err := c.powerOn(ctx, h); err != nil {
		return err
	}
	c.logger().Info("started host", "host", h.Name)
	return nil
}

// Crash powers host name off: every process in its namespace is killed at
// once (SIGKILL) and both its links go down, so nothing answers for it
// any more.
func (c *Cloud) Crash(ctx context.Context, name string) error {
	h, _, err := c.host(name)
	if err != nil {
		return err
	}
	return c.powerOff(ctx, h)
}

func (c *Cloud) powerOff(ctx context.Context, h Host) error {
	if err := c.setPower(h, PowerOff); err != nil {
		return err
	}
	var errs []error
	killed := 0
	for deadline := time.Now().Add(10 * time.Second); ; {
		pids, err := c.namespacePids(ctx, h)
		if err != nil {
			return err
		}
		// The nova-compute session's group too: a child that left the
		// namespace is still the host's.
		for _, svc := range []string{computeService(h), agentService(h)} {
			if pid, ok := c.running(svc); ok {
				pids = append(pids, proc.Group(pid)...)
			}
		}
		if len(pids) == 0 {
			break
		}
		if time.Now().After(deadline) {
			errs = append(errs, fmt.Errorf("%s: processes %v survive SIGKILL", h.Name, pids))
			break
		}
		for _, pid := range pids {
			if err := syscall.Kill(pid, syscall.SIGKILL); err == nil {
				killed++
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	os.Remove(c.pidFile(computeService(h)))
	os.Remove(c.pidFile(agentService(h)))
	if namespaceExists(h) {
		errs = append(errs, c.setLinks(ctx, h, lab.LinkAll, false))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	c.logger().Info("crashed host", "host", h.Name, "killed", killed)
	return nil
}

// Partition takes host name's link(s) down while its processes keep
// running.
func (c *Cloud) Partition(ctx context.Context, name string, which lab.Link) error {
	h, _, err := c.host(name)
	if err != nil {
		return err
	}
	if which != lab.LinkMgmt && which != lab.LinkStorage && which != lab.LinkAll {
		return fmt.Errorf("unknown link %q: want mgmt, storage or all", which)
	}
	if err := c.setLinks(ctx, h, which, false); err != nil {
		return err
	}
	c.logger().Info("cut link", "host", h.Name, "link", which)
	return nil
}

// Heal brings the links of host name (of every powered-on host when name
// is empty) up again. A crashed host stays down: start boots it.
func (c *Cloud) Heal(ctx context.Context, name string) error {
	var hosts []Host
	if name != "" {
		h, _, err := c.host(name)
		if err != nil {
			return err
		}
		hosts = []Host{h}
	} else {
		s, err := c.loadSettings()
		if err != nil {
			return err
		}
		hosts = Hosts(s.Hosts)
	}
	for _, h := range hosts {
		if c.power(h) != PowerOn {
			if name != "" {
				return fmt.Errorf("%s is powered off: haconf-lab compute start %s boots it", h.Name, h.Name)
			}
			continue
		}
		if err := c.setLinks(ctx, h, lab.LinkAll, true); err != nil {
			return err
		}
		c.logger().Info("healed links", "host", h.Name)
	}
	return nil
}

// Command returns a command that runs argv in host name's namespace, as
// root, for exec. The caller wires its standard streams and runs it.
func (c *Cloud) Command(ctx context.Context, name string, argv []string) (*exec.Cmd, error) {
	h, _, err := c.host(name)
	if err != nil {
		return nil, err
	}
	if c.power(h) != PowerOn {
		return nil, fmt.Errorf("%s is powered off", h.Name)
	}
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", h.Namespace()}, argv...)...), nil
}

// hostNamespaces lists the hosts whose namespaces exist (of any up).
func hostNamespaces() []Host {
	ents, _ := os.ReadDir("/run/netns")
	var hosts []Host
	for _, e := range ents {
		if name, ok := strings.CutPrefix(e.Name(), "hccmp-"); ok {
			if h, err := ParseHost(name); err == nil {
				hosts = append(hosts, h)
			}
		}
	}
	return hosts
}

// removeHostsBeyond powers off and removes hosts cmpK, K > n, that an
// earlier up with more hosts left.
func (c *Cloud) removeHostsBeyond(ctx context.Context, n int) error {
	for _, h := range hostNamespaces() {
		if h.Index <= n {
			continue
		}
		if err := c.powerOff(ctx, h); err != nil {
			return err
		}
		if err := c.teardownHostNet(ctx, h); err != nil {
			return err
		}
		os.RemoveAll(c.hostDir(h))
	}
	return nil
}

// Down stops every process of the cloud, deletes the hosts' namespaces and
// the lab bridges that no one else uses. The warm state stays for the next
// up unless purge.
func (c *Cloud) Down(ctx context.Context, purge bool) error {
	if err := c.checkDir(); err != nil {
		return err
	}
	var errs []error
	if err := c.stop(svcController, 10*time.Second); err != nil {
		errs = append(errs, err)
	}
	for _, h := range hostNamespaces() {
		if err := c.powerOff(ctx, h); err != nil {
			errs = append(errs, err)
		}
		if err := c.teardownHostNet(ctx, h); err != nil {
			errs = append(errs, err)
		}
	}
	svcs := controlServices(true)
	for i := len(svcs) - 1; i >= 0; i-- {
		grace := 15 * time.Second
		switch svcs[i] {
		case svcMariaDB:
			grace = 90 * time.Second // a clean shutdown keeps the warm state sound
		case svcRabbit:
			grace = 30 * time.Second
		}
		if err := c.stop(svcs[i], grace); err != nil {
			errs = append(errs, err)
		}
	}
	if err := c.teardownBridges(ctx); err != nil {
		errs = append(errs, err)
	}
	if pids := Leftovers(c.Dir); len(pids) > 0 {
		errs = append(errs, fmt.Errorf("processes of the compute lab left after down: %v", pids))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	os.RemoveAll(c.runDir())
	os.RemoveAll(c.path("hosts"))
	os.Remove(c.settingsFile())
	if purge {
		return os.RemoveAll(c.Dir)
	}
	return nil
}

// Leftovers lists the processes whose command line or environment
// mentions dir (this process and its ancestors aside: the command that
// took the cloud down): after Down there must be none.
func Leftovers(dir string) []int {
	mine := map[int]bool{}
	for pid := os.Getpid(); pid > 1 && !mine[pid]; {
		mine[pid] = true
		st, err := proc.ReadStat(pid)
		if err != nil {
			break
		}
		pid = st.PPID
	}
	var pids []int
	for _, pid := range proc.Pids() {
		if mine[pid] {
			continue
		}
		for _, f := range []string{"cmdline", "environ"} {
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", pid, f))
			if err == nil && strings.Contains(string(b), dir) {
				pids = append(pids, pid)
				break
			}
		}
	}
	return pids
}
