package compute

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/haconf/haconf/internal/runner"
)

// A fence agent's status exit codes (fence-agents' fencing.py): 0 the
// host is on, 2 it is off; anything else is a failure to tell.
const (
	fenceStatusOn  = 0
	fenceStatusOff = 2
)

// ErrNotOff is a fence whose agent reported success but whose status
// check did not confirm the host off.
var ErrNotOff = errors.New("the fence agent did not confirm the host off")

// CmdRunner runs one command with options (stdin for secrets).
type CmdRunner interface {
	RunCmd(ctx context.Context, c runner.Cmd) ([]byte, error)
}

// Fencer powers compute hosts off through their fence agents.
type Fencer struct {
	Runner CmdRunner
	// ReadFile reads password files (os.ReadFile when nil).
	ReadFile func(string) ([]byte, error)
	// Poll is the interval of status checks after the off (1 s when 0).
	Poll time.Duration
}

// Off powers the host off and returns once its agent's status says off.
// A host is never evacuated unless Off returned nil.
func (f *Fencer) Off(ctx context.Context, h Host) error {
	ctx, cancel := context.WithTimeout(ctx, h.Fence.Timeout)
	defer cancel()
	if _, err := f.run(ctx, h, "off"); err != nil {
		return fmt.Errorf("fence %s off: %w", h.Name, err)
	}
	poll := f.Poll
	if poll == 0 {
		poll = time.Second
	}
	sawOn := false
	for {
		on, err := f.Status(ctx, h)
		if err == nil && !on {
			return nil
		}
		sawOn = sawOn || (err == nil && on)
		select {
		case <-ctx.Done():
			if sawOn {
				return fmt.Errorf("fence %s: %w", h.Name, ErrNotOff)
			}
			return fmt.Errorf("fence %s: status: %w", h.Name, err)
		case <-time.After(poll):
		}
	}
}

// On powers the host on (haconf does it only when told to).
func (f *Fencer) On(ctx context.Context, h Host) error {
	ctx, cancel := context.WithTimeout(ctx, h.Fence.Timeout)
	defer cancel()
	if _, err := f.run(ctx, h, "on"); err != nil {
		return fmt.Errorf("fence %s on: %w", h.Name, err)
	}
	return nil
}

// Status reports whether the host is powered on.
func (f *Fencer) Status(ctx context.Context, h Host) (on bool, err error) {
	code, err := f.run(ctx, h, "status")
	switch {
	case err == nil:
		return true, nil
	case code == fenceStatusOff:
		return false, nil
	default:
		return false, err
	}
}

// run runs the agent with action and the host's options on stdin (the
// protocol Pacemaker's fencer uses: nothing secret on the command line).
func (f *Fencer) run(ctx context.Context, h Host, action string) (int, error) {
	stdin, err := f.stdin(h, action)
	if err != nil {
		return -1, err
	}
	_, err = f.Runner.RunCmd(ctx, runner.Cmd{Name: h.Fence.Agent, Stdin: stdin})
	if err != nil {
		return runner.ExitCode(err), err
	}
	return fenceStatusOn, nil
}

func (f *Fencer) stdin(h Host, action string) ([]byte, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "action=%s\n", action)
	keys := make([]string, 0, len(h.Fence.Options))
	for k := range h.Fence.Options {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%s\n", k, h.Fence.Options[k])
	}
	if h.Fence.PasswordFile != "" {
		read := f.ReadFile
		if read == nil {
			read = os.ReadFile
		}
		pw, err := read(h.Fence.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("fence password of %s: %w", h.Name, err)
		}
		fmt.Fprintf(&b, "password=%s\n", strings.TrimRight(string(pw), "\r\n"))
	}
	return []byte(b.String()), nil
}
