// Package clock tells whether this machine's clock is synchronised and how
// far another host's clock is from it, for preflight and status. It runs
// systemd's timedatectl (systemd 252: the NTPSynchronized property, set by
// whichever NTP client disciplines the kernel clock), chrony's chronyc
// tracking (chrony 4.x) and iputils' clockdiff (20221126: ICMP timestamp
// requests, 1 ms resolution, answered by the peer's kernel, so nothing
// needs to run there, not even before bootstrap).
package clock

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/haconf/haconf/internal/runner"
)

// MaxPeerOffset is how far apart the two controllers' clocks may be. The
// watchdogs' signed peer requests fail beyond 30 s (watchdog.MaxClockSkew);
// logs, fencing history and backups are only read together with clocks
// much closer than that.
const MaxPeerOffset = time.Second

// Timeout bounds each tool run (clockdiff gives up on a silent peer after
// about 11 s).
const Timeout = 30 * time.Second

// Runner runs one command and returns its standard output (with the
// output also on error, as internal/runner.Exec does).
type Runner interface {
	Run(ctx context.Context, name string, args ...string) ([]byte, error)
}

// SyncState is whether the clock is synchronised.
type SyncState string

const (
	Synchronised    SyncState = "synchronised"
	NotSynchronised SyncState = "not synchronised"
	// Unknown: no tool could tell (none installed, or none answered).
	Unknown SyncState = "unknown"
)

// Sync is whether this machine's clock is synchronised, and which tool
// said so.
type Sync struct {
	State SyncState `json:"state"`
	// Tool is the tool State comes from: timedatectl or chronyc ("" when
	// unknown).
	Tool string `json:"tool,omitempty"`
	// Detail is what the tool said, or why no tool could tell.
	Detail string `json:"detail"`
}

// ParseTimedatectl reads `timedatectl show -p NTPSynchronized --value`:
// yes or no.
func ParseTimedatectl(out []byte) (bool, error) {
	switch v := strings.TrimSpace(string(out)); v {
	case "yes":
		return true, nil
	case "no":
		return false, nil
	default:
		return false, fmt.Errorf("timedatectl: NTPSynchronized is %q, not yes or no", v)
	}
}

// Tracking is `chronyc tracking`.
type Tracking struct {
	ReferenceID string
	Stratum     int
	// LeapStatus is Normal, Insert second, Delete second or Not
	// synchronised.
	LeapStatus string
	// Offset is how far the system clock is from NTP time (positive: fast).
	Offset time.Duration
}

// Synchronised reports whether chronyd is synchronised to a source:
// every leap status but "Not synchronised".
func (t Tracking) Synchronised() bool {
	return t.LeapStatus != "" && t.LeapStatus != "Not synchronised"
}

// ParseChronyTracking reads `chronyc tracking`.
func ParseChronyTracking(out []byte) (Tracking, error) {
	var t Tracking
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		val = strings.TrimSpace(val)
		switch strings.TrimSpace(key) {
		case "Reference ID":
			t.ReferenceID = val
		case "Stratum":
			t.Stratum, _ = strconv.Atoi(val)
		case "Leap status":
			t.LeapStatus = val
		case "System time":
			// "0.000001373 seconds fast of NTP time"
			f := strings.Fields(val)
			if len(f) < 3 {
				return Tracking{}, fmt.Errorf("chronyc tracking: System time %q", val)
			}
			secs, err := strconv.ParseFloat(f[0], 64)
			if err != nil {
				return Tracking{}, fmt.Errorf("chronyc tracking: System time %q: %w", val, err)
			}
			if f[2] == "slow" {
				secs = -secs
			}
			t.Offset = time.Duration(secs * float64(time.Second))
		}
	}
	if t.LeapStatus == "" {
		return Tracking{}, errors.New("chronyc tracking: no Leap status")
	}
	return t, nil
}

// ReadSync asks timedatectl, then chronyc. Either saying synchronised is
// enough (chronyd without rtcsync leaves the kernel's flag, which
// timedatectl reads, unset); a tool that answered "not synchronised" is
// the answer when neither says synchronised; Unknown when neither could
// tell.
func ReadSync(ctx context.Context, r Runner) Sync {
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	var notSynced []Sync
	var why []string
	out, err := r.Run(ctx, "timedatectl", "show", "-p", "NTPSynchronized", "--value")
	if err == nil {
		synced, perr := ParseTimedatectl(out)
		switch {
		case perr != nil:
			why = append(why, perr.Error())
		case synced:
			return Sync{State: Synchronised, Tool: "timedatectl", Detail: "NTPSynchronized=yes"}
		default:
			notSynced = append(notSynced, Sync{State: NotSynchronised, Tool: "timedatectl", Detail: "NTPSynchronized=no"})
		}
	} else {
		why = append(why, "timedatectl: "+failure(out, err))
	}
	out, err = r.Run(ctx, "chronyc", "tracking")
	if err == nil {
		t, perr := ParseChronyTracking(out)
		switch {
		case perr != nil:
			why = append(why, perr.Error())
		case t.Synchronised():
			return Sync{State: Synchronised, Tool: "chronyc", Detail: fmt.Sprintf("Leap status %s, system time %s of NTP time", t.LeapStatus, fastSlow(t.Offset))}
		default:
			notSynced = append(notSynced, Sync{State: NotSynchronised, Tool: "chronyc", Detail: "Leap status " + t.LeapStatus})
		}
	} else {
		why = append(why, "chronyc: "+failure(out, err))
	}
	if len(notSynced) > 0 {
		s := notSynced[0]
		for _, o := range notSynced[1:] {
			s.Detail += "; " + o.Tool + ": " + o.Detail
		}
		return s
	}
	return Sync{State: Unknown, Detail: strings.Join(why, "; ")}
}

// failure says why a tool gave no answer: not installed, or the first
// line it printed (chronyc prints "506 Cannot talk to daemon" on
// standard output), or the runner's error.
func failure(out []byte, err error) string {
	if errors.Is(err, exec.ErrNotFound) {
		return "not installed"
	}
	var e *runner.Error
	if errors.As(err, &e) {
		if l := firstLine(e.Stderr); l != "" {
			return l
		}
	}
	if l := firstLine(string(out)); l != "" {
		return l
	}
	return err.Error()
}

func firstLine(s string) string {
	return strings.TrimSpace(strings.SplitN(strings.TrimSpace(s), "\n", 2)[0])
}

// ParseClockdiff reads clockdiff's output when it is not on a terminal,
// "TIME DELTA DELTA1" (DELTA and DELTA1 in ms: two estimates of the peer's
// clock minus this one), and returns DELTA, the one from the fastest
// exchanges in each direction.
func ParseClockdiff(out []byte) (time.Duration, error) {
	f := strings.Fields(string(out))
	if len(f) != 3 {
		return 0, fmt.Errorf("clockdiff: %q is not TIME DELTA DELTA1", strings.TrimSpace(string(out)))
	}
	for _, x := range []string{f[0], f[2]} {
		if _, err := strconv.ParseInt(x, 10, 64); err != nil {
			return 0, fmt.Errorf("clockdiff: %q is not TIME DELTA DELTA1", strings.TrimSpace(string(out)))
		}
	}
	ms, err := strconv.ParseInt(f[1], 10, 32)
	if err != nil {
		return 0, fmt.Errorf("clockdiff: %q is not TIME DELTA DELTA1", strings.TrimSpace(string(out)))
	}
	return time.Duration(ms) * time.Millisecond, nil
}

// ErrNotMeasured is a peer offset clockdiff could not measure (not
// installed, the peer not answering ICMP timestamp requests).
var ErrNotMeasured = errors.New("the offset to the peer could not be measured")

// PeerOffset measures the clock of the host at addr minus this one with
// clockdiff (root: it needs a raw socket). Its errors wrap ErrNotMeasured.
func PeerOffset(ctx context.Context, r Runner, addr string) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	out, err := r.Run(ctx, "clockdiff", addr)
	if err != nil {
		return 0, fmt.Errorf("%w: clockdiff %s: %s", ErrNotMeasured, addr, failure(out, err))
	}
	d, err := ParseClockdiff(out)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrNotMeasured, err)
	}
	return d, nil
}

// Describe says how the peer's clock stands to this one: "3ms ahead",
// "1.5s behind", "within 1ms".
func Describe(offset time.Duration) string {
	switch {
	case offset > 0:
		return offset.String() + " ahead"
	case offset < 0:
		return (-offset).String() + " behind"
	}
	return "within 1ms"
}

// Relative says it against ref: "3ms ahead of ref", "1.5s behind ref",
// "within 1ms of ref".
func Relative(offset time.Duration, ref string) string {
	if offset > 0 {
		return Describe(offset) + " of " + ref
	}
	if offset == 0 {
		return "within 1ms of " + ref
	}
	return Describe(offset) + " " + ref
}

// fastSlow is an offset from NTP time in chronyc's words: "1.373µs fast".
func fastSlow(d time.Duration) string {
	if d < 0 {
		return (-d).String() + " slow"
	}
	return d.String() + " fast"
}
