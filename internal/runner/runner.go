// Package runner is the only place haconf starts external processes.
//
// Every command runs with a context and a timeout, with LC_ALL=C, from an
// argv (never a shell string), and fails with an *Error that carries the
// argv, the exit code and the end of stderr. Other packages declare the small
// interface they need (usually Run) and take a Runner, so tests can pass a
// stateful fake.
package runner

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// DefaultTimeout bounds a command whose caller set no deadline.
const DefaultTimeout = 2 * time.Minute

// Runner runs one command and returns its standard output.
type Runner interface {
	Run(ctx context.Context, name string, args ...string) ([]byte, error)
}

// Cmd describes a command with the less common options.
type Cmd struct {
	Name  string
	Args  []string
	Stdin []byte   // fed to the process; use it for secrets, never argv
	Env   []string // added to the environment (KEY=VALUE)
	Dir   string
}

// Exec runs commands on this machine.
type Exec struct {
	// Timeout applies when the context has no deadline; zero means DefaultTimeout.
	Timeout time.Duration
}

// Error is returned when a command cannot start or exits non-zero.
type Error struct {
	Argv     []string
	ExitCode int // -1 when the process did not exit normally
	Stderr   string
	Err      error
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("%s: %v", strings.Join(e.Argv, " "), e.Err)
	if e.ExitCode > 0 {
		msg = fmt.Sprintf("%s: exit status %d", strings.Join(e.Argv, " "), e.ExitCode)
	}
	if s := strings.TrimSpace(e.Stderr); s != "" {
		msg += ": " + s
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// ExitCode returns the exit status carried by err, or -1.
func ExitCode(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.ExitCode
	}
	return -1
}

// Run implements Runner.
func (x Exec) Run(ctx context.Context, name string, args ...string) ([]byte, error) {
	return x.RunCmd(ctx, Cmd{Name: name, Args: args})
}

// RunCmd runs c and returns its standard output.
func (x Exec) RunCmd(ctx context.Context, c Cmd) ([]byte, error) {
	if _, ok := ctx.Deadline(); !ok {
		t := x.Timeout
		if t == 0 {
			t = DefaultTimeout
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t)
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, c.Name, c.Args...)
	cmd.Env = append(append(os.Environ(), "LC_ALL=C"), c.Env...)
	cmd.Dir = c.Dir
	if c.Stdin != nil {
		cmd.Stdin = bytes.NewReader(c.Stdin)
	}
	var stdout bytes.Buffer
	stderr := &tailBuffer{max: 4096}
	cmd.Stdout = &stdout
	cmd.Stderr = stderr
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	if err == nil {
		return stdout.Bytes(), nil
	}
	e := &Error{Argv: append([]string{c.Name}, c.Args...), ExitCode: -1, Stderr: stderr.String(), Err: err}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		e.ExitCode = ee.ExitCode()
	}
	if ctx.Err() != nil {
		e.Err = fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	return stdout.Bytes(), e
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	buf []byte
	max int
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = t.buf[len(t.buf)-t.max:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return string(t.buf) }

// Stream starts a long-running command (such as `drbdsetup events2`) and
// returns its standard output as it is produced. Closing the reader, or
// cancelling ctx, kills the process. The command gets LC_ALL=C and no
// timeout; a non-zero exit shows up as a read error carrying *Error.
func (x Exec) Stream(ctx context.Context, name string, args ...string) (io.ReadCloser, error) {
	ctx, cancel := context.WithCancel(ctx)
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	stderr := &tailBuffer{max: 4096}
	cmd.Stderr = stderr
	cmd.WaitDelay = 2 * time.Second
	out, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		cancel()
		return nil, &Error{Argv: append([]string{name}, args...), ExitCode: -1, Err: err}
	}
	return &stream{r: out, cmd: cmd, cancel: cancel, stderr: stderr}, nil
}

type stream struct {
	r      io.ReadCloser
	cmd    *exec.Cmd
	cancel context.CancelFunc
	stderr *tailBuffer
	done   bool
}

func (s *stream) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err == io.EOF && !s.done {
		s.done = true
		if werr := s.cmd.Wait(); werr != nil {
			e := &Error{Argv: s.cmd.Args, ExitCode: -1, Stderr: s.stderr.String(), Err: werr}
			var ee *exec.ExitError
			if errors.As(werr, &ee) {
				e.ExitCode = ee.ExitCode()
			}
			return n, e
		}
	}
	return n, err
}

func (s *stream) Close() error {
	s.cancel()
	if !s.done {
		s.done = true
		_ = s.cmd.Wait()
	}
	return nil
}

// StartDaemon starts a long-lived process detached from haconf: its own
// session, stdin from /dev/null, stdout and stderr appended to logPath.
// It returns the pid without waiting. For daemons that do not fork
// themselves (pacemakerd) on machines without systemd.
func (x Exec) StartDaemon(name string, args []string, logPath string) (int, error) {
	return x.StartDaemonCmd(Cmd{Name: name, Args: args}, logPath)
}

// StartDaemonCmd is StartDaemon with c's environment and directory (c.Stdin
// is ignored: a daemon reads /dev/null). Its own session makes its process
// group id its pid, so one kill of -pid reaches all of it.
func (x Exec) StartDaemonCmd(c Cmd, logPath string) (int, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return 0, fmt.Errorf("start %s: %w", c.Name, err)
	}
	defer logf.Close()
	cmd := exec.Command(c.Name, c.Args...)
	cmd.Env = append(append(os.Environ(), "LC_ALL=C"), c.Env...)
	cmd.Dir = c.Dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return 0, &Error{Argv: append([]string{c.Name}, c.Args...), ExitCode: -1, Err: err}
	}
	pid := cmd.Process.Pid
	go cmd.Wait() // reap it if it exits while haconf still runs
	return pid, nil
}
