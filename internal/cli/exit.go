package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
)

// Exit codes, decided here only. 64 and 70 are sysexits.h's EX_USAGE and
// EX_SOFTWARE.
const (
	ExitOK       = 0
	ExitFailure  = 1  // the command failed, or a check it ran failed
	ExitDegraded = 1  // status: works, but not fully redundant (or not fully known)
	ExitDown     = 2  // status: a service is down
	ExitConfig   = 3  // the configuration is invalid
	ExitUsage    = 64 // unknown command, bad flag or value, wrong arguments
	ExitInternal = 70 // a bug: a recovered panic, or an error marked internal
)

// ExitError makes the process exit with Code. With a nil Err it is silent:
// the command already printed what the user needs.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit status %d", e.Code)
	}
	return e.Err.Error()
}

func (e *ExitError) Unwrap() error { return e.Err }

// WithCode makes err exit the process with code.
func WithCode(code int, err error) error { return &ExitError{Code: code, Err: err} }

// SilentExit ends the command with code and no further message.
func SilentExit(code int) error { return &ExitError{Code: code} }

// UsageError marks err as the user's mistake in calling the command
// (exit 64). An error that already carries an exit code keeps it.
func UsageError(err error) error {
	if err == nil || hasCode(err) {
		return err
	}
	return &ExitError{Code: ExitUsage, Err: err}
}

// Usagef is UsageError(fmt.Errorf(format, a...)).
func Usagef(format string, a ...any) error { return UsageError(fmt.Errorf(format, a...)) }

// InternalError marks err as a bug in the program (exit 70).
func InternalError(err error) error {
	return &ExitError{Code: ExitInternal, Err: fmt.Errorf("internal error (a bug, please report it): %w", err)}
}

// Guard runs f and turns a panic in it into an internal error carrying the
// panic's value and stack.
func Guard(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = InternalError(fmt.Errorf("panic: %v\n%s", r, debug.Stack()))
		}
	}()
	return f()
}

func hasCode(err error) bool {
	var ee *ExitError
	return errors.As(err, &ee)
}

// ExitCode prints err on stderr, prefixed with the program's name, unless it
// is silent, and returns the process's exit status: the code err carries
// (the outermost ExitError), else ExitFailure. nil is ExitOK.
func ExitCode(err error, stderr io.Writer) int {
	if err == nil {
		return ExitOK
	}
	var ee *ExitError
	if !errors.As(err, &ee) {
		fmt.Fprintf(stderr, "%s: %v\n", progName(), err)
		return ExitFailure
	}
	if ee.Err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", progName(), err)
	}
	return ee.Code
}

// progName is the name the program was run as: haconf, haconf-lab.
func progName() string {
	return strings.TrimSuffix(filepath.Base(os.Args[0]), ".test")
}
