package proc

import (
	"context"
	"fmt"
	"syscall"
	"time"
)

// StopOptions tune Stop.
type StopOptions struct {
	// Alive reports whether pid is still the process being stopped (not
	// gone, not a zombie, not a reused pid).
	Alive func(pid int) bool
	// KillBefore is how long before ctx's deadline SIGKILL follows
	// SIGTERM; without a deadline SIGKILL follows after 60 s.
	KillBefore time.Duration
	// Poll is the time between checks (default 100 ms).
	Poll time.Duration
	// Killed, when set, hears that SIGKILL was sent.
	Killed func()
}

// Stop sends pid SIGTERM, then SIGKILL shortly before ctx's deadline, and
// returns once o.Alive says it is gone - what a resource agent's stop must
// do: it may only succeed once the process is gone. killed reports whether
// SIGKILL was needed.
func Stop(ctx context.Context, pid int, o StopOptions) (killed bool, err error) {
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil && err != syscall.ESRCH {
		return false, fmt.Errorf("SIGTERM pid %d: %w", pid, err)
	}
	killAt := time.Now().Add(60 * time.Second)
	if d, ok := ctx.Deadline(); ok {
		killAt = d.Add(-o.KillBefore)
	}
	poll := o.Poll
	if poll == 0 {
		poll = 100 * time.Millisecond
	}
	for o.Alive(pid) {
		if !killed && time.Now().After(killAt) {
			syscall.Kill(pid, syscall.SIGKILL)
			killed = true
			if o.Killed != nil {
				o.Killed()
			}
		}
		select {
		case <-ctx.Done():
			return killed, fmt.Errorf("pid %d still running: %w", pid, ctx.Err())
		case <-time.After(poll):
		}
	}
	return killed, nil
}
