package cli

import (
	"context"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// Main runs a program's command tree with the program's arguments and a
// context that SIGINT and SIGTERM cancel, turning a panic into an internal
// error (Guard), and exits with the status exitCode gives the result
// (ExitCode, or a program's own on top of it).
func Main(root *cobra.Command, exitCode func(err error, stderr io.Writer) int) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	root.SetArgs(os.Args[1:])
	err := Guard(func() error { return root.ExecuteContext(ctx) })
	code := exitCode(err, root.ErrOrStderr())
	stop()
	os.Exit(code)
}

// NewLogger is the logger of a program's commands: text on w (stderr),
// with debug messages only when verbose (-v).
func NewLogger(w io.Writer, verbose bool) *slog.Logger {
	level := slog.LevelInfo
	if verbose {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}
