package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/haconf/haconf/internal/config"
	"github.com/haconf/haconf/internal/fixtures"
	"github.com/haconf/haconf/internal/runner"
	"github.com/haconf/haconf/pacemaker"
)

// fakeHost is a small model of a controller: installed and installable
// packages, files (with their modes), devices, addresses, reachable peers,
// its time tools and the fence devices (BMCs) its fence agents reach.
type fakeHost struct {
	name        string
	installed   map[string]bool
	installable map[string]bool
	// versions are the packages' versions (Debian 12's for any other).
	versions   map[string]string
	files      map[string]string
	modes      map[string]fs.FileMode // of files (0644 when not here)
	devices    map[string]bool
	addrs      []string
	reachable  map[string]bool
	multipathd bool
	// tools are what timedatectl, chronyc and clockdiff print and how
	// they exit (a tool not here is not installed).
	tools map[string]toolRun
	// bmcs are what a fence agent finds at each address: "on", "off", or a
	// captured failure (exit 1); no fence agent is installed when nil.
	bmcs map[string]toolRun
	// fenced are the fence agents' stdin, in order.
	fenced []string
}

// toolRun is what a command prints and how it exits.
type toolRun struct {
	out, stderr string
	code        int
}

// Captured runs of the time tools and the fence agents.
var (
	clockdiffSame   = toolRun{out: readCapture("clock", "clockdiff-20221126-same-clock.stdout")}
	clockdiffBehind = toolRun{out: readCapture("clock", "clockdiff-20221126-peer-behind-1500ms.stdout")}
	clockdiffDown   = toolRun{stderr: readCapture("clock", "clockdiff-20221126-peer-down.stderr"), code: 1}
	chronySynced    = toolRun{out: readCapture("clock", "chronyc-43-tracking-synchronised.stdout")}
	chronyNoDaemon  = toolRun{out: readCapture("clock", "chronyc-43-tracking-no-daemon.stdout"), code: 1}
	noSystemd       = toolRun{stderr: readCapture("clock", "timedatectl-252-show-ntpsynchronized-no-systemd.stderr"), code: 1}
	bmcOn           = toolRun{out: readCapture("pacemaker", "fence/fence_ipmilan-4121-status-on.stdout")}
	bmcOff          = toolRun{out: readCapture("pacemaker", "fence/fence_ipmilan-4121-status-off.stdout"), code: 2}
	bmcWrongPW      = toolRun{stderr: readCapture("pacemaker", "fence/fence_ipmilan-4121-status-wrong-password.stderr"), code: 1}
	bmcNone         = toolRun{stderr: readCapture("pacemaker", "fence/fence_ipmilan-4121-status-no-bmc.stderr"), code: 1}
)

func readCapture(pkg, name string) string {
	b, err := os.ReadFile(fixtures.Path(pkg, name))
	if err != nil {
		panic(err)
	}
	return string(b)
}

// The example configuration's fence password files.
var examplePasswordFiles = []string{"/etc/haconf/ipmi-ctl1.pass", "/etc/haconf/ipmi-ctl2.pass", "/etc/haconf/ipmi-cmp1.password", "/etc/haconf/ipmi-cmp2.password"}

func newFakeHost() *fakeHost {
	h := &fakeHost{
		name: "ctl1", installed: map[string]bool{}, installable: map[string]bool{},
		files:     map[string]string{"/proc/drbd": "version: 8.4.11 (api:1/proto:86-101)\n", "/proc/mounts": "/dev/sda1 / ext4 rw 0 0\n"},
		modes:     map[string]fs.FileMode{},
		devices:   map[string]bool{"/dev/vg0/haconf": true},
		addrs:     []string{"192.0.2.11", "198.51.100.11"},
		reachable: map[string]bool{"192.0.2.12": true, "198.51.100.12": true},
		tools:     map[string]toolRun{"timedatectl": {out: "yes\n"}, "clockdiff": clockdiffSame},
		bmcs:      map[string]toolRun{"192.0.2.111": bmcOn, "192.0.2.112": bmcOn},
	}
	for _, p := range Packages {
		h.installed[p] = true
		h.installable[p] = true
	}
	for _, p := range examplePasswordFiles {
		h.files[p] = "bmc-password\n"
		h.modes[p] = 0o600
	}
	return h
}

var errExit = errors.New("exit status 1")

func (h *fakeHost) version(pkg string) string {
	if v, ok := h.versions[pkg]; ok {
		return v
	}
	if pkg == "rabbitmq-server" {
		return "3.10.8-1.1+deb12u1"
	}
	return "1.0"
}

// result is what running r looks like to the caller, as runner.Exec
// returns it.
func (r toolRun) result(argv ...string) ([]byte, error) {
	if r.code == 0 {
		return []byte(r.out), nil
	}
	return []byte(r.out), &runner.Error{Argv: argv, ExitCode: r.code, Stderr: r.stderr, Err: fmt.Errorf("exit status %d", r.code)}
}

func notInstalled(name string) error {
	return &runner.Error{Argv: []string{name}, ExitCode: -1, Err: &exec.Error{Name: name, Err: exec.ErrNotFound}}
}

func (h *fakeHost) RunCmd(ctx context.Context, c runner.Cmd) ([]byte, error) {
	if c.Name != "fence_ipmilan" || len(c.Args) > 0 {
		return nil, fmt.Errorf("fake host: unexpected command %s %v", c.Name, c.Args)
	}
	h.fenced = append(h.fenced, string(c.Stdin))
	if h.bmcs == nil {
		return nil, notInstalled(c.Name)
	}
	ip := ""
	for _, l := range strings.Split(string(c.Stdin), "\n") {
		if v, ok := strings.CutPrefix(l, "ip="); ok {
			ip = v
		}
	}
	bmc, ok := h.bmcs[ip]
	if !ok {
		bmc = bmcNone
	}
	return bmc.result(c.Name)
}

func (h *fakeHost) Run(ctx context.Context, name string, args ...string) ([]byte, error) {
	last := args[len(args)-1]
	switch name {
	case "timedatectl", "chronyc", "clockdiff":
		t, ok := h.tools[name]
		if !ok {
			return nil, notInstalled(name)
		}
		return t.result(append([]string{name}, args...)...)
	case "dpkg-query":
		if h.installed[last] {
			if strings.Contains(args[1], "${Version}") {
				return []byte("install ok installed\t" + h.version(last)), nil
			}
			return []byte("install ok installed"), nil
		}
		return nil, errExit
	case "apt-cache":
		if h.installable[last] {
			return []byte(last + ":\n  Installed: (none)\n  Candidate: " + h.version(last) + "\n"), nil
		}
		return []byte(last + ":\n  Installed: (none)\n  Candidate: (none)\n"), nil
	case "modinfo":
		return nil, errExit
	case "ip":
		var b strings.Builder
		b.WriteString(`[{"ifname":"lo","addr_info":[{"local":"127.0.0.1"}]}`)
		for i, a := range h.addrs {
			fmt.Fprintf(&b, `,{"ifname":"eth%d","addr_info":[{"local":%q}]}`, i, a)
		}
		b.WriteString("]")
		return []byte(b.String()), nil
	case "ping":
		if h.reachable[last] {
			return nil, nil
		}
		return nil, errExit
	case "pidof":
		if h.multipathd {
			return []byte("123\n"), nil
		}
		return nil, errExit
	}
	return nil, fmt.Errorf("fake host: unexpected command %s", name)
}

func (h *fakeHost) ReadFile(p string) ([]byte, error) {
	if s, ok := h.files[p]; ok {
		return []byte(s), nil
	}
	return nil, fs.ErrNotExist
}

type fakeInfo struct{ mode fs.FileMode }

func (f fakeInfo) Name() string       { return "" }
func (f fakeInfo) Size() int64        { return 0 }
func (f fakeInfo) Mode() fs.FileMode  { return f.mode }
func (f fakeInfo) ModTime() time.Time { return time.Time{} }
func (f fakeInfo) IsDir() bool        { return false }
func (f fakeInfo) Sys() any           { return nil }

func (h *fakeHost) Stat(p string) (fs.FileInfo, error) {
	if h.devices[p] {
		return fakeInfo{fs.ModeDevice | 0o660}, nil
	}
	if _, ok := h.files[p]; ok {
		if m, ok := h.modes[p]; ok {
			return fakeInfo{m}, nil
		}
		return fakeInfo{0o644}, nil
	}
	return nil, &os.PathError{Op: "stat", Path: p, Err: fs.ErrNotExist}
}

func (h *fakeHost) Hostname() (string, error) { return h.name, nil }

func TestPreflight(t *testing.T) {
	cfg, err := config.Parse("example.yaml", config.Example())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		break_  func(h *fakeHost)
		failed  map[string]string // check name -> text in its Fix
		unknown []string          // checks that could not be made
		details map[string]string // check name -> text in its Detail
	}{
		{"healthy", func(h *fakeHost) {}, nil, nil, nil},
		{"missing but installable package", func(h *fakeHost) { h.installed["haproxy"] = false }, nil, nil, nil},
		{"unavailable package", func(h *fakeHost) { h.installed["haproxy"], h.installable["haproxy"] = false, false },
			map[string]string{"packages": "apt-get update"}, nil, nil},
		{"RabbitMQ 4 installed, mode mirrored", func(h *fakeHost) { h.versions = map[string]string{"rabbitmq-server": "4.0.5-3"} },
			map[string]string{"rabbitmq version": "rabbitmq.mode"}, nil,
			map[string]string{"rabbitmq version": "RabbitMQ 4.0.5 has no classic queue mirroring (removed in 4.0): every queue would have a single copy; use mode quorum (with a witness) or active-passive (installed)"}},
		{"RabbitMQ 4 to be installed, mode mirrored", func(h *fakeHost) {
			h.installed["rabbitmq-server"], h.versions = false, map[string]string{"rabbitmq-server": "4.0.5-3"}
		}, map[string]string{"rabbitmq version": "rabbitmq.mode"}, nil, map[string]string{"rabbitmq version": "(to be installed)"}},
		{"RabbitMQ 3.10 runs mode mirrored", func(h *fakeHost) {}, nil, nil, map[string]string{"rabbitmq version": "RabbitMQ 3.10.8 (installed) runs mode mirrored"}},
		{"wrong hostname", func(h *fakeHost) { h.name = "controller-a" }, map[string]string{"hostname": "hostnamectl set-hostname ctl1"}, nil, nil},
		{"no disk", func(h *fakeHost) { delete(h.devices, "/dev/vg0/haconf") }, map[string]string{"backing disk": "lvcreate"}, nil, nil},
		{"disk mounted", func(h *fakeHost) { h.files["/proc/mounts"] += "/dev/vg0/haconf /mnt ext4 rw 0 0\n" },
			map[string]string{"backing disk": "unmount"}, nil, nil},
		{"no drbd", func(h *fakeHost) { delete(h.files, "/proc/drbd") }, map[string]string{"drbd module": "drbd-dkms"}, nil, nil},
		{"storage address missing", func(h *fakeHost) { h.addrs = h.addrs[:1] }, map[string]string{"cluster networks": "nodes[]"}, nil, nil},
		{"peer down on both links", func(h *fakeHost) { h.reachable = nil },
			map[string]string{"peer management": "management link", "peer storage": "storage link"}, nil, nil},
		{"multipathd without blacklist", func(h *fakeHost) { h.multipathd = true }, map[string]string{"multipath": "blacklist"}, nil, nil},
		{"clock not synchronised", func(h *fakeHost) { h.tools["timedatectl"] = toolRun{out: "no\n"} },
			map[string]string{"clock sync": "timedatectl set-ntp true"}, nil, map[string]string{"clock sync": "not synchronised (timedatectl: NTPSynchronized=no)"}},
		{"no systemd, chrony synchronised", func(h *fakeHost) { h.tools["timedatectl"], h.tools["chronyc"] = noSystemd, chronySynced },
			nil, nil, map[string]string{"clock sync": "synchronised (chronyc: Leap status Normal"}},
		{"no time tool answers", func(h *fakeHost) { h.tools["timedatectl"], h.tools["chronyc"] = noSystemd, chronyNoDaemon },
			nil, []string{"clock sync"}, map[string]string{"clock sync": "unknown: timedatectl: System has not been booted with systemd"}},
		{"peer clock 1.5s behind", func(h *fakeHost) { h.tools["clockdiff"] = clockdiffBehind },
			map[string]string{"peer clock": "same NTP servers"}, nil, map[string]string{"peer clock": "ctl2's clock is 1.5s behind this one's (they must be less than 1s apart)"}},
		{"peer answers no ICMP timestamps", func(h *fakeHost) { h.tools["clockdiff"] = clockdiffDown },
			nil, []string{"peer clock"}, map[string]string{"peer clock": "clockdiff 192.0.2.12: clockdiff: 127.0.0.1 is down"}},
		{"no clockdiff yet", func(h *fakeHost) { delete(h.tools, "clockdiff") }, nil, []string{"peer clock"}, nil},
		{"wrong BMC password", func(h *fakeHost) { h.bmcs["192.0.2.112"] = bmcWrongPW },
			map[string]string{"fence ctl2": "Pacemaker cannot fence ctl2"}, nil,
			map[string]string{"fence ctl2": "fence-ctl2 (fence_ipmilan at 192.0.2.112): Failed: Unable to obtain correct plug status or plug is not available (password from /etc/haconf/ipmi-ctl2.pass)"}},
		{"no BMC at the address", func(h *fakeHost) { delete(h.bmcs, "192.0.2.111") },
			map[string]string{"fence ctl1": "reachable from this node"}, nil, map[string]string{"fence ctl1": "(fence_ipmilan at 192.0.2.111): Connection timed out"}},
		{"a node powered off", func(h *fakeHost) { h.bmcs["192.0.2.112"] = bmcOff }, nil, nil, map[string]string{"fence ctl2": "ctl2 is powered off"}},
		{"fence agents not installed yet", func(h *fakeHost) { h.bmcs = nil }, nil, []string{"fence ctl1", "fence ctl2"},
			map[string]string{"fence ctl1": "unknown: fence_ipmilan is not installed: fence-ctl1 cannot be asked here"}},
		{"BMC password file missing, no secrets file", func(h *fakeHost) { delete(h.files, "/etc/haconf/ipmi-ctl2.pass") },
			map[string]string{"fence ctl2": "fence_passwords.ctl2 (bootstrap installs it in /etc/haconf/ipmi-ctl2.pass"}, nil,
			map[string]string{"fence ctl2": "/etc/haconf/ipmi-ctl2.pass does not exist and the secrets file has no fence_passwords.ctl2"}},
		{"BMC password file readable by others", func(h *fakeHost) { h.modes["/etc/haconf/ipmi-ctl1.pass"] = 0o644 },
			map[string]string{"fence ctl1": "fence_passwords.ctl1"}, nil, map[string]string{"fence ctl1": "is readable by group or others (mode -rw-r--r--)"}},
		{"compute host's fence password missing", func(h *fakeHost) { delete(h.files, "/etc/haconf/ipmi-cmp2.password") },
			map[string]string{"fence passwords": "compute_fence_passwords.<host>"}, nil,
			map[string]string{"fence passwords": "/etc/haconf/ipmi-cmp2.password (the password of compute host cmp2's fence agent) does not exist and the secrets file has no compute_fence_passwords.cmp2"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newFakeHost()
			tc.break_(h)
			checks, err := Preflight(context.Background(), h, cfg, "ctl1", nil)
			if len(tc.failed) == 0 && err != nil {
				t.Fatalf("unexpected failure: %v %+v", err, checks)
			}
			if len(tc.failed) > 0 && !errors.Is(err, ErrPreflight) {
				t.Fatalf("err = %v, want ErrPreflight", err)
			}
			for _, c := range checks {
				fix, shouldFail := tc.failed[c.Name]
				if c.Failed() != shouldFail {
					t.Errorf("check %s: ok=%v (%s)", c.Name, c.OK, c.Detail)
				}
				if shouldFail && !strings.Contains(c.Fix, fix) {
					t.Errorf("check %s fix %q lacks %q", c.Name, c.Fix, fix)
				}
				if unknown := slices.Contains(tc.unknown, c.Name); c.Unknown != unknown || (unknown && c.OK) {
					t.Errorf("check %s: unknown=%v ok=%v (%s)", c.Name, c.Unknown, c.OK, c.Detail)
				}
				if d, ok := tc.details[c.Name]; ok && !strings.Contains(c.Detail, d) {
					t.Errorf("check %s detail %q lacks %q", c.Name, c.Detail, d)
				}
			}
			names := map[string]bool{}
			for _, c := range checks {
				names[c.Name] = true
			}
			for _, want := range []string{"clock sync", "peer clock", "fence ctl1", "fence ctl2", "fence passwords"} {
				if !names[want] {
					t.Errorf("no %s check", want)
				}
			}
		})
	}
}

func TestNotStartedIgnoresRecoveredFailures(t *testing.T) {
	m := pacemaker.CrmMon{
		Nodes: []pacemaker.MonNode{{Name: "ctl1", Online: true}, {Name: "ctl2", Online: true}},
		Resources: []pacemaker.MonResource{
			{ID: "rabbitmq", Role: "Started", Nodes: []string{"ctl1"}},
			{ID: "vip", Role: "Started", Nodes: []string{"ctl1"}},
			{ID: "haproxy", Role: "Stopped"},
			// crm_mon shows an action in flight as the role (a start that
			// may still fail: the lab's RabbitMQ start did, 4 minutes on).
			{ID: "rabbitmq", Role: "Starting"},
		},
		FailedActions: []pacemaker.MonFailedAction{
			{OpKey: "rabbitmq_monitor_20000", ExitReason: "timed out"}, // recovered: runs again
			{OpKey: "haproxy_start_0", ExitReason: "cannot bind"},
		},
	}
	got := strings.Join(notStarted(m), "; ")
	if got != "haproxy; rabbitmq (starting); haproxy_start_0 failed (cannot bind)" {
		t.Fatalf("notStarted = %q", got)
	}
	if opResource("fs-haconf_monitor_20000") != "fs-haconf" || opResource("g_x_start_0") != "g_x" {
		t.Fatal("opResource")
	}
}

// Before bootstrap the password files are not on the node: preflight asks
// the BMCs with the passwords the secrets file holds, on the agent's stdin
// only, as bootstrap will install them.
func TestPreflightFenceWithSecrets(t *testing.T) {
	cfg, err := config.Parse("example.yaml", config.Example())
	if err != nil {
		t.Fatal(err)
	}
	h := newFakeHost()
	for _, p := range examplePasswordFiles {
		delete(h.files, p)
	}
	s := testSecrets()
	s.File = "/etc/haconf/secrets.yaml"
	checks, err := Preflight(context.Background(), h, cfg, "ctl1", s)
	if err != nil {
		t.Fatalf("%v: %+v", err, checks)
	}
	for _, c := range checks {
		if strings.HasPrefix(c.Name, "fence ctl") && !strings.HasSuffix(c.Detail, "is powered on (password from /etc/haconf/secrets.yaml)") {
			t.Errorf("%s: %s", c.Name, c.Detail)
		}
	}
	want := []string{
		"action=status\nip=192.0.2.111\nusername=admin\nlanplus=1\npassword=bmc-ctl1-password\n",
		"action=status\nip=192.0.2.112\nusername=admin\nlanplus=1\npassword=bmc-ctl2-password\n",
	}
	if !slices.Equal(h.fenced, want) {
		t.Errorf("the fence agents read\n%q\nwant\n%q", h.fenced, want)
	}

	// A password for a node haconf.yaml does not know fails preflight (it
	// would fail bootstrap's secrets step).
	s.FencePasswords["ctl3"] = "typo"
	_, err = Preflight(context.Background(), newFakeHost(), cfg, "ctl1", s)
	if !errors.Is(err, ErrPreflight) {
		t.Errorf("a password for no node: err = %v", err)
	}
}

// SBD and type none have no fence device to ask: preflight says so.
func TestPreflightNothingToAsk(t *testing.T) {
	for typ, want := range map[string]string{
		"sbd":  "sbd: no fence device to ask",
		"none": "fencing.type none (i_accept_no_fencing): no fence device to ask",
	} {
		cfg, err := config.Parse("example.yaml", config.Example())
		if err != nil {
			t.Fatal(err)
		}
		cfg.Fencing.Type = typ
		h := newFakeHost()
		checks, err := Preflight(context.Background(), h, cfg, "ctl1", nil)
		if err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		c := checks[len(checks)-1]
		if c.Name != "fencing" || !c.OK || !strings.HasPrefix(c.Detail, want) || len(h.fenced) != 0 {
			t.Errorf("%s: last check %+v, agents ran %d times", typ, c, len(h.fenced))
		}
		// The compute hosts' fence passwords are still checked.
		delete(h.files, "/etc/haconf/ipmi-cmp1.password")
		if _, err := Preflight(context.Background(), h, cfg, "ctl1", nil); !errors.Is(err, ErrPreflight) {
			t.Errorf("%s: a compute host's fence password missing: err = %v", typ, err)
		}
	}
}
