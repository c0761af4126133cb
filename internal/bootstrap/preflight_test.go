package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/haconf/haconf/internal/config"
	"github.com/haconf/haconf/pacemaker"
)

// fakeHost is a small model of a controller: installed and installable
// packages, files, devices, addresses and reachable peers.
type fakeHost struct {
	name        string
	installed   map[string]bool
	installable map[string]bool
	files       map[string]string
	devices     map[string]bool
	addrs       []string
	reachable   map[string]bool
	multipathd  bool
}

func newFakeHost() *fakeHost {
	h := &fakeHost{
		name: "ctl1", installed: map[string]bool{}, installable: map[string]bool{},
		files:     map[string]string{"/proc/drbd": "version: 8.4.11 (api:1/proto:86-101)\n", "/proc/mounts": "/dev/sda1 / ext4 rw 0 0\n"},
		devices:   map[string]bool{"/dev/vg0/haconf": true},
		addrs:     []string{"192.0.2.11", "198.51.100.11"},
		reachable: map[string]bool{"192.0.2.12": true, "198.51.100.12": true},
	}
	for _, p := range Packages {
		h.installed[p] = true
		h.installable[p] = true
	}
	return h
}

var errExit = errors.New("exit status 1")

func (h *fakeHost) Run(ctx context.Context, name string, args ...string) ([]byte, error) {
	last := args[len(args)-1]
	switch name {
	case "dpkg-query":
		if h.installed[last] {
			return []byte("install ok installed"), nil
		}
		return nil, errExit
	case "apt-cache":
		if h.installable[last] {
			return []byte(last + ":\n  Installed: (none)\n  Candidate: 1.0\n"), nil
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
		name   string
		break_ func(h *fakeHost)
		failed map[string]string // check name -> text in its Fix
	}{
		{"healthy", func(h *fakeHost) {}, nil},
		{"missing but installable package", func(h *fakeHost) { h.installed["haproxy"] = false }, nil},
		{"unavailable package", func(h *fakeHost) { h.installed["haproxy"], h.installable["haproxy"] = false, false },
			map[string]string{"packages": "apt-get update"}},
		{"wrong hostname", func(h *fakeHost) { h.name = "controller-a" }, map[string]string{"hostname": "hostnamectl set-hostname ctl1"}},
		{"no disk", func(h *fakeHost) { delete(h.devices, "/dev/vg0/haconf") }, map[string]string{"backing disk": "lvcreate"}},
		{"disk mounted", func(h *fakeHost) { h.files["/proc/mounts"] += "/dev/vg0/haconf /mnt ext4 rw 0 0\n" },
			map[string]string{"backing disk": "unmount"}},
		{"no drbd", func(h *fakeHost) { delete(h.files, "/proc/drbd") }, map[string]string{"drbd module": "drbd-dkms"}},
		{"storage address missing", func(h *fakeHost) { h.addrs = h.addrs[:1] }, map[string]string{"cluster networks": "nodes[]"}},
		{"peer down on both links", func(h *fakeHost) { h.reachable = nil },
			map[string]string{"peer management": "management link", "peer storage": "storage link"}},
		{"multipathd without blacklist", func(h *fakeHost) { h.multipathd = true }, map[string]string{"multipath": "blacklist"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newFakeHost()
			tc.break_(h)
			checks, err := Preflight(context.Background(), h, cfg, "ctl1")
			if len(tc.failed) == 0 && err != nil {
				t.Fatalf("unexpected failure: %v %+v", err, checks)
			}
			if len(tc.failed) > 0 && !errors.Is(err, ErrPreflight) {
				t.Fatalf("err = %v, want ErrPreflight", err)
			}
			for _, c := range checks {
				fix, shouldFail := tc.failed[c.Name]
				if c.OK == shouldFail {
					t.Errorf("check %s: ok=%v (%s)", c.Name, c.OK, c.Detail)
				}
				if shouldFail && !strings.Contains(c.Fix, fix) {
					t.Errorf("check %s fix %q lacks %q", c.Name, c.Fix, fix)
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
