package agents

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/haconf/haconf/internal/runner"
	"github.com/haconf/haconf/internal/testenv"
	"github.com/haconf/haconf/pacemaker"
	"github.com/haconf/haconf/vip"
)

func TestVIPParameters(t *testing.T) {
	env := func(kv map[string]string) pacemaker.OCFEnv {
		return pacemaker.OCFEnv{Getenv: func(k string) string { return kv[k] }}
	}
	for _, tc := range []struct {
		kv   map[string]string
		want string
	}{
		{map[string]string{"OCF_RESKEY_ip": "10.0.0.1", "OCF_RESKEY_cidr_netmask": "24"}, ""},
		{map[string]string{"OCF_RESKEY_ip": "fe80::1"}, `parameter ip="fe80::1": not an IPv4 address`},
		{map[string]string{}, `parameter ip="": not an IPv4 address`},
		{map[string]string{"OCF_RESKEY_ip": "10.0.0.1", "OCF_RESKEY_cidr_netmask": "33"}, `parameter cidr_netmask="33": must be 1-32`},
		{map[string]string{"OCF_RESKEY_ip": "10.0.0.1", "OCF_RESKEY_arp_count": "x"}, `parameter arp_count="x": must be 0-100`},
	} {
		err := VIPFromEnv(env(tc.kv), nil).Validate()
		if got := ""; err != nil {
			got = err.Error()
			if got != tc.want {
				t.Errorf("%v: %q, want %q", tc.kv, got, tc.want)
			}
		} else if tc.want != "" {
			t.Errorf("%v: no error, want %q", tc.kv, tc.want)
		}
	}
}

// TestVIPInNamespace runs the agent for real in a private network
// namespace: a veth pair, the VIP discovered by prefix, the gratuitous ARP
// seen on the other end, and monitor/stop.
func TestVIPInNamespace(t *testing.T) {
	if os.Getenv("HACONF_VIP_NETNS") == "" {
		testenv.RequireRoot(t)
		testenv.RequireCommands(t, "unshare", "ip")
		cmd := exec.Command("unshare", "--net", "--", os.Args[0], "-test.run=^TestVIPInNamespace$", "-test.v")
		cmd.Env = append(os.Environ(), "HACONF_VIP_NETNS=1")
		out, err := cmd.CombinedOutput()
		t.Logf("in a new network namespace:\n%s", out)
		if err != nil {
			t.Fatal(err)
		}
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	run := runner.Exec{}
	for _, args := range [][]string{
		{"link", "add", "v0", "type", "veth", "peer", "name", "v1"},
		{"link", "set", "v0", "up"}, {"link", "set", "v1", "up"},
		{"addr", "add", "10.99.0.1/24", "dev", "v0"},
	} {
		if _, err := run.Run(ctx, "ip", args...); err != nil {
			t.Fatal(err)
		}
	}
	v0, _ := net.InterfaceByName("v0")
	v1, _ := net.InterfaceByName("v1")
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, int(htons(unix.ETH_P_ARP)))
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ARP), Ifindex: v1.Index}); err != nil {
		t.Fatal(err)
	}
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 5})

	a := &VIP{Prefix: netip.MustParsePrefix("10.99.0.10/24"), ARPCount: 2, Run: run, Announce: vip.Announce}
	if err := a.Monitor(ctx); !errors.Is(err, pacemaker.ErrNotRunning) {
		t.Fatalf("monitor before start: %v", err)
	}
	if err := a.Start(ctx); err != nil {
		t.Fatalf("start: %v", err)
	}
	if ifc, ok := a.holder(); !ok || ifc.Name != "v0" {
		t.Fatalf("after start the VIP is on %v (ok=%v), want v0", ifc, ok)
	}
	buf := make([]byte, 128)
	n, _, err := unix.Recvfrom(fd, buf, 0)
	if err != nil {
		t.Fatalf("no gratuitous ARP on the peer: %v", err)
	}
	if want := vip.GratuitousARP(v0.HardwareAddr, a.Prefix.Addr()); !bytes.Equal(buf[:42], want) || n < 42 {
		t.Fatalf("received %x, want %x", buf[:n], want)
	}
	if err := a.Monitor(ctx); err != nil {
		t.Fatalf("monitor: %v", err)
	}
	if err := a.Start(ctx); err != nil {
		t.Fatalf("second start: %v", err)
	}
	if err := a.Stop(ctx); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if err := a.Monitor(ctx); !errors.Is(err, pacemaker.ErrNotRunning) {
		t.Fatalf("monitor after stop: %v", err)
	}
	if err := a.Stop(ctx); err != nil {
		t.Fatalf("second stop: %v", err)
	}
	// No interface in the prefix: a clear error naming the fix.
	b := &VIP{Prefix: netip.MustParsePrefix("10.98.0.10/24"), Run: run, Announce: vip.Announce}
	if err := b.Start(ctx); err == nil || !bytes.Contains([]byte(err.Error()), []byte("set the nic parameter")) {
		t.Fatalf("start without a matching interface: %v", err)
	}
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }
