package pacemaker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/haconf/haconf/internal/runner"
)

func fenceCapture(t testing.TB, name string) []byte {
	t.Helper()
	if name == "" {
		return nil
	}
	b, err := os.ReadFile(filepath.Join("testdata", "fence", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Fence agents' status runs, captured (testdata/fence/README.md), read as
// status reads them: the power state, or the agent's own message.
func TestParseFenceStatus(t *testing.T) {
	for _, c := range []struct {
		name           string
		code           int
		stdout, stderr string
		power, msg     string
	}{
		{"on", 0, "fence_ipmilan-4121-status-on.stdout", "fence_ipmilan-4121-status-on.stderr", PowerOn, ""},
		{"off", 2, "fence_ipmilan-4121-status-off.stdout", "fence_ipmilan-4121-status-on.stderr", PowerOff, ""},
		{"wrong password", 1, "", "fence_ipmilan-4121-status-wrong-password.stderr", "",
			"Failed: Unable to obtain correct plug status or plug is not available"},
		{"no BMC at the address", 1, "", "fence_ipmilan-4121-status-no-bmc.stderr", "", "Connection timed out"},
		{"an option it does not know", 1, "", "fence_ipmilan-4121-status-unknown-option.stderr", "", "Connection timed out"},
		{"no ipmitool", 1, "", "fence_ipmilan-4121-status-no-ipmitool.stderr", "", "Ipmitool not found or not accessible"},
		{"lab agent", 1, "", "fence_haconf_lab-status-not-a-lab-address.stderr", "",
			`fence_haconf_lab: status ctl2: Get "http://127.0.0.1:9/v1/nodes/ctl2": lab client: refusing to dial 127.0.0.1:9: not a lab address`},
		{"silent failure", 1, "", "", "", "exit status 1, no message"},
	} {
		power, err := ParseFenceStatus(c.code, fenceCapture(t, c.stdout), fenceCapture(t, c.stderr))
		if power != c.power {
			t.Errorf("%s: power %q, want %q", c.name, power, c.power)
		}
		switch {
		case c.msg == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.msg != "" && (!errors.Is(err, ErrFenceAgent) || err.Error() != ErrFenceAgent.Error()+": "+c.msg):
			t.Errorf("%s: err = %v, want the agent's message %q", c.name, err, c.msg)
		}
	}
}

func FuzzParseFenceStatus(f *testing.F) {
	for _, name := range []string{"fence_ipmilan-4121-status-no-bmc.stderr", "fence_ipmilan-4121-status-unknown-option.stderr", "fence_ipmilan-4121-status-on.stdout"} {
		f.Add(1, []byte(nil), fenceCapture(f, name))
	}
	f.Fuzz(func(t *testing.T, code int, stdout, stderr []byte) {
		power, err := ParseFenceStatus(code, stdout, stderr)
		if (power == "") == (err == nil) {
			t.Fatalf("power %q and err %v", power, err)
		}
	})
}

func ipmiConfig() *FencingConfig {
	no := false
	return &FencingConfig{Type: FenceIPMI, IPMI: map[string]IPMI{
		"ctl1": {Address: "192.0.2.111", User: "admin", PasswordFile: "/etc/haconf/ipmi-ctl1.pass"},
		"ctl2": {Address: "192.0.2.112", User: "admin", PasswordFile: "/etc/haconf/ipmi-ctl2.pass", Lanplus: &no},
	}}
}

// The agent reads what Pacemaker's fencer would pass it, without the
// fencer's own parameters; a password given replaces the password file,
// and nothing is ever on the command line.
func TestStatusRequest(t *testing.T) {
	devs := ipmiConfig().Devices([]string{"ctl1", "ctl2"})
	if len(devs) != 2 || devs[1].ID != "fence-ctl2" || devs[1].Agent != "fence_ipmilan" || devs[1].PasswordFile != "/etc/haconf/ipmi-ctl2.pass" {
		t.Fatalf("devices %+v", devs)
	}
	if got, want := string(devs[1].StatusRequest("")), "action=status\nip=192.0.2.112\nusername=admin\npassword_script=/bin/cat /etc/haconf/ipmi-ctl2.pass\nlanplus=0\n"; got != want {
		t.Errorf("with the password file:\n%s\nwant\n%s", got, want)
	}
	if got, want := string(devs[0].StatusRequest("pw from secrets")), "action=status\nip=192.0.2.111\nusername=admin\nlanplus=1\npassword=pw from secrets\n"; got != want {
		t.Errorf("with a password:\n%s\nwant\n%s", got, want)
	}
	lab := (&FencingConfig{Type: FenceLab, Lab: Lab{URL: "http://10.251.2.1:7410"}}).Devices([]string{"ctl1", "ctl2"})
	if got, want := string(lab[1].StatusRequest("")), "action=status\nplug=ctl2\nurl=http://10.251.2.1:7410\n"; got != want {
		t.Errorf("lab agent:\n%s\nwant\n%s", got, want)
	}
	if d := (&FencingConfig{Type: FenceNone}).Devices([]string{"ctl1", "ctl2"}); d != nil {
		t.Errorf("type none has devices %+v", d)
	}
}

// fakeAgents answers fence agents as the captured runs did: by stdin's ip.
type fakeAgents struct {
	ran []runner.Cmd
	// byIP is what the agent does for the BMC at an address: "on", "off",
	// a capture's name (exit 1), "hang" or "missing".
	byIP map[string]string
}

func (f *fakeAgents) RunCmd(ctx context.Context, c runner.Cmd) ([]byte, error) {
	f.ran = append(f.ran, c)
	ip := ""
	for _, l := range strings.Split(string(c.Stdin), "\n") {
		if v, ok := strings.CutPrefix(l, "ip="); ok {
			ip = v
		}
	}
	argv := append([]string{c.Name}, c.Args...)
	switch what := f.byIP[ip]; what {
	case "on":
		return []byte("Status: ON\n"), nil
	case "off":
		return []byte("Status: OFF\n"), &runner.Error{Argv: argv, ExitCode: 2, Err: errors.New("exit status 2")}
	case "hang":
		<-ctx.Done()
		return nil, &runner.Error{Argv: argv, ExitCode: -1, Err: fmt.Errorf("%w (signal: killed)", ctx.Err())}
	case "missing":
		return nil, &runner.Error{Argv: argv, ExitCode: -1, Err: &exec.Error{Name: c.Name, Err: exec.ErrNotFound}}
	default:
		b, err := os.ReadFile(filepath.Join("testdata", "fence", what))
		if err != nil {
			return nil, err
		}
		return nil, &runner.Error{Argv: argv, ExitCode: 1, Stderr: string(b), Err: errors.New("exit status 1")}
	}
}

func TestDeviceStatus(t *testing.T) {
	devs := ipmiConfig().Devices([]string{"ctl1", "ctl2"})
	ctx := context.Background()
	for _, c := range []struct {
		name, does string
		want       FenceStatus
	}{
		{"on", "on", FenceStatus{Power: PowerOn}},
		{"off", "off", FenceStatus{Power: PowerOff}},
		{"wrong password", "fence_ipmilan-4121-status-wrong-password.stderr",
			FenceStatus{Error: "Failed: Unable to obtain correct plug status or plug is not available"}},
		{"agent not installed", "missing", FenceStatus{Error: "fence_ipmilan is not installed", Missing: true}},
	} {
		f := &fakeAgents{byIP: map[string]string{"192.0.2.112": c.does}}
		got := devs[1].Status(ctx, f, "")
		c.want.Device, c.want.Target, c.want.Agent = "fence-ctl2", "ctl2", "fence_ipmilan"
		if got != c.want {
			t.Errorf("%s: %+v, want %+v", c.name, got, c.want)
		}
		if len(f.ran) != 1 || len(f.ran[0].Args) != 0 || !strings.HasPrefix(string(f.ran[0].Stdin), "action=status\n") {
			t.Errorf("%s: ran %+v: want the agent with its options on stdin only", c.name, f.ran)
		}
	}
	// A device that does not answer in time: the caller's deadline ends the run.
	ctx, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	got := devs[1].Status(ctx, &fakeAgents{byIP: map[string]string{"192.0.2.112": "hang"}}, "")
	if got.Power != "" || !strings.Contains(got.Error, "deadline exceeded") {
		t.Errorf("hanging agent: %+v", got)
	}
}
