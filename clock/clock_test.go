package clock

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/haconf/haconf/internal/runner"
)

func capture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseChronyTracking(t *testing.T) {
	synced, err := ParseChronyTracking(capture(t, "chronyc-43-tracking-synchronised.stdout"))
	if err != nil {
		t.Fatal(err)
	}
	if !synced.Synchronised() || synced.LeapStatus != "Normal" || synced.Stratum != 9 || synced.ReferenceID != "7F000001 (localhost)" || synced.Offset != 1373*time.Nanosecond {
		t.Errorf("synchronised: %+v", synced)
	}
	unsynced, err := ParseChronyTracking(capture(t, "chronyc-43-tracking-not-synchronised.stdout"))
	if err != nil {
		t.Fatal(err)
	}
	if unsynced.Synchronised() || unsynced.LeapStatus != "Not synchronised" {
		t.Errorf("not synchronised: %+v", unsynced)
	}
	slow := strings.Replace(string(capture(t, "chronyc-43-tracking-synchronised.stdout")), "0.000001373 seconds fast", "0.250000000 seconds slow", 1)
	if tr, err := ParseChronyTracking([]byte(slow)); err != nil || tr.Offset != -250*time.Millisecond {
		t.Errorf("slow: %+v %v", tr, err)
	}
	if _, err := ParseChronyTracking(capture(t, "chronyc-43-tracking-no-daemon.stdout")); err == nil {
		t.Error("506 Cannot talk to daemon parsed")
	}
}

func TestParseClockdiff(t *testing.T) {
	for name, want := range map[string]time.Duration{
		"clockdiff-20221126-same-clock.stdout":         0,
		"clockdiff-20221126-peer-behind-1500ms.stdout": -1500 * time.Millisecond,
		"clockdiff-20221126-peer-ahead-42s.stdout":     42 * time.Second,
	} {
		got, err := ParseClockdiff(capture(t, name))
		if err != nil || got != want {
			t.Errorf("%s: %v, %v; want %v", name, got, err, want)
		}
	}
	// What clockdiff prints on a terminal is not parsed as an offset.
	if _, err := ParseClockdiff([]byte("..\nhost=192.0.2.12 rtt=1(0)ms/0ms delta=0ms/0ms Sun Dec  6 19:21:31 2026\n")); err == nil {
		t.Error("terminal output parsed")
	}
}

func TestParseTimedatectl(t *testing.T) {
	// The value alone, as systemd prints a boolean property with --value
	// (no machine with systemd as PID 1 to capture it from: see
	// testdata/README.md).
	for out, want := range map[string]bool{"yes\n": true, "no\n": false} {
		if got, err := ParseTimedatectl([]byte(out)); err != nil || got != want {
			t.Errorf("%q: %v %v", out, got, err)
		}
	}
	if _, err := ParseTimedatectl(nil); err == nil {
		t.Error("empty output parsed")
	}
}

func FuzzParseChronyTracking(f *testing.F) {
	for _, name := range []string{"chronyc-43-tracking-synchronised.stdout", "chronyc-43-tracking-not-synchronised.stdout"} {
		f.Add(capture(f, name))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		tr, err := ParseChronyTracking(b)
		if err == nil && tr.LeapStatus == "" {
			t.Fatal("parsed without a leap status")
		}
	})
}

func FuzzParseClockdiff(f *testing.F) {
	f.Add(capture(f, "clockdiff-20221126-peer-behind-1500ms.stdout"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if d, err := ParseClockdiff(b); err == nil && d%time.Millisecond != 0 {
			t.Fatalf("%v is not whole milliseconds", d)
		}
	})
}

// tools is a machine's time tools: what each prints and how it exits, from
// the captures.
type tools map[string]tool

type tool struct {
	out, stderr string
	code        int // -1: not installed
}

func (m tools) Run(ctx context.Context, name string, args ...string) ([]byte, error) {
	tl, ok := m[name]
	argv := append([]string{name}, args...)
	if !ok || tl.code == -1 {
		return nil, &runner.Error{Argv: argv, ExitCode: -1, Err: &exec.Error{Name: name, Err: exec.ErrNotFound}}
	}
	if tl.code != 0 {
		return []byte(tl.out), &runner.Error{Argv: argv, ExitCode: tl.code, Stderr: tl.stderr, Err: errors.New("exit status")}
	}
	return []byte(tl.out), nil
}

func TestReadSync(t *testing.T) {
	noSystemd := tool{stderr: string(capture(t, "timedatectl-252-show-ntpsynchronized-no-systemd.stderr")), code: 1}
	noDaemon := tool{out: string(capture(t, "chronyc-43-tracking-no-daemon.stdout")), code: 1}
	chronySynced := tool{out: string(capture(t, "chronyc-43-tracking-synchronised.stdout"))}
	chronyUnsynced := tool{out: string(capture(t, "chronyc-43-tracking-not-synchronised.stdout"))}
	for _, c := range []struct {
		name   string
		m      tools
		want   Sync
		detail string // a part of Detail, when want.Detail is not given whole
	}{
		{"timesyncd synchronised", tools{"timedatectl": {out: "yes\n"}},
			Sync{State: Synchronised, Tool: "timedatectl", Detail: "NTPSynchronized=yes"}, ""},
		{"chrony without rtcsync: the kernel flag unset, chronyd synchronised", tools{"timedatectl": {out: "no\n"}, "chronyc": chronySynced},
			Sync{State: Synchronised, Tool: "chronyc", Detail: "Leap status Normal, system time 1.373µs fast of NTP time"}, ""},
		{"chrony without systemd", tools{"timedatectl": noSystemd, "chronyc": chronySynced},
			Sync{State: Synchronised, Tool: "chronyc"}, "Leap status Normal"},
		{"neither synchronised", tools{"timedatectl": {out: "no\n"}, "chronyc": chronyUnsynced},
			Sync{State: NotSynchronised, Tool: "timedatectl", Detail: "NTPSynchronized=no; chronyc: Leap status Not synchronised"}, ""},
		{"timesyncd not synchronised, no chrony", tools{"timedatectl": {out: "no\n"}},
			Sync{State: NotSynchronised, Tool: "timedatectl", Detail: "NTPSynchronized=no"}, ""},
		{"no systemd, chronyd not synchronised", tools{"timedatectl": noSystemd, "chronyc": chronyUnsynced},
			Sync{State: NotSynchronised, Tool: "chronyc", Detail: "Leap status Not synchronised"}, ""},
		{"no systemd, chronyd not running", tools{"timedatectl": noSystemd, "chronyc": noDaemon},
			Sync{State: Unknown, Detail: "timedatectl: System has not been booted with systemd as init system (PID 1). Can't operate.; chronyc: 506 Cannot talk to daemon"}, ""},
		{"no tool at all", tools{},
			Sync{State: Unknown, Detail: "timedatectl: not installed; chronyc: not installed"}, ""},
	} {
		got := ReadSync(context.Background(), c.m)
		if c.detail != "" && strings.Contains(got.Detail, c.detail) {
			c.want.Detail = got.Detail
		}
		if got != c.want {
			t.Errorf("%s:\n got %+v\nwant %+v", c.name, got, c.want)
		}
	}
}

func TestPeerOffset(t *testing.T) {
	for _, c := range []struct {
		name string
		cd   tool
		want time.Duration
		err  string
	}{
		{"behind", tool{out: string(capture(t, "clockdiff-20221126-peer-behind-1500ms.stdout"))}, -1500 * time.Millisecond, ""},
		{"peer silent", tool{stderr: string(capture(t, "clockdiff-20221126-peer-down.stderr")), code: 1}, 0,
			"the offset to the peer could not be measured: clockdiff 192.0.2.12: clockdiff: 127.0.0.1 is down"},
		{"no route", tool{stderr: string(capture(t, "clockdiff-20221126-no-route.stderr")), code: 1}, 0,
			"clockdiff 192.0.2.12: clockdiff: connect: Network is unreachable"},
		{"not installed", tool{code: -1}, 0, "clockdiff 192.0.2.12: not installed"},
	} {
		got, err := PeerOffset(context.Background(), tools{"clockdiff": c.cd}, "192.0.2.12")
		switch {
		case c.err == "" && (err != nil || got != c.want):
			t.Errorf("%s: %v %v, want %v", c.name, got, err, c.want)
		case c.err != "" && (!errors.Is(err, ErrNotMeasured) || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%s: err %v, want %q", c.name, err, c.err)
		}
	}
	for d, want := range map[time.Duration][2]string{
		3 * time.Millisecond:     {"3ms ahead", "3ms ahead of ctl1's"},
		-1500 * time.Millisecond: {"1.5s behind", "1.5s behind ctl1's"},
		0:                        {"within 1ms", "within 1ms of ctl1's"},
	} {
		if got, rel := Describe(d), Relative(d, "ctl1's"); got != want[0] || rel != want[1] {
			t.Errorf("Describe(%v) = %q, Relative %q", d, got, rel)
		}
	}
}
