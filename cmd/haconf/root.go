package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/haconf/haconf/internal/config"
)

// Exit codes, decided here only.
const (
	exitOK       = 0
	exitFailure  = 1 // the command failed
	exitUsage    = 2 // bad flags or arguments
	exitConfig   = 3 // the configuration is invalid
	exitDegraded = 1 // status: the pair works but is not fully redundant
	exitDown     = 2 // status: a service is down
)

// exitError carries a specific exit code through cobra.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}
func (e *exitError) Unwrap() error { return e.err }

// withCode makes err exit the process with code.
func withCode(code int, err error) error { return &exitError{code: code, err: err} }

// silentExit ends the command with code and no further message (the
// command already printed what the user needs).
func silentExit(code int) error { return &exitError{code: code} }

type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }

// globals are the flags every command shares.
type globals struct {
	configFile string
	verbose    bool
	logger     *slog.Logger
}

func (g *globals) loadConfig() (*config.Config, error) {
	return config.Load(g.configFile)
}

// thisNode is --node when given, else this host's short name.
func thisNode(flag string) string {
	if flag != "" {
		return flag
	}
	h, _ := os.Hostname()
	return strings.SplitN(h, ".", 2)[0]
}

// controllerName is the controller a command acts as: --node when given,
// else this host's short name. It must be one of c's nodes.
func controllerName(c *config.Config, flag string) (string, error) {
	name := thisNode(flag)
	if _, ok := c.Node(name); !ok {
		return "", &usageError{fmt.Errorf("this node %q is not one of the controllers %v in %s (use --node)", name, c.NodeNames(), c.File)}
	}
	return name, nil
}

func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:   "haconf",
		Short: "Make two OpenStack controllers a highly available pair (DRBD, Corosync, Pacemaker)",
		Long: `haconf turns two fresh controllers into an active/passive pair on DRBD, Corosync
and Pacemaker with fencing, and keeps it healthy: MariaDB on DRBD, RabbitMQ,
the API virtual IP behind haproxy, safe split-brain resolution, backups that
are proven by restore, and compute-node failover.`,
		Example: `  haconf config example > haconf.yaml
  haconf config validate -c haconf.yaml
  haconf plan -c haconf.yaml --node ctl1
  haconf render -c haconf.yaml --node ctl1 --root /`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRun: func(cmd *cobra.Command, args []string) {
			level := slog.LevelInfo
			if g.verbose {
				level = slog.LevelDebug
			}
			g.logger = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
		},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.PersistentFlags().StringVarP(&g.configFile, "config", "c", "/etc/haconf/haconf.yaml", "haconf.yaml to read")
	root.PersistentFlags().BoolVarP(&g.verbose, "verbose", "v", false, "log debug messages")
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error { return &usageError{err} })
	root.AddCommand(
		newConfigCmd(g),
		newRenderCmd(g),
		newPlanCmd(g),
		newVersionCmd(),
		newSecretsCmd(),
		newPreflightCmd(g),
		newBootstrapCmd(g),
		newLabCmd(g),
		newDRBDCmd(g),
		newStatusCmd(g),
		newSplitBrainCmd(g),
		newBackupCmd(g),
		newWatchdogCmd(g),
		newOCFCmd(),
		newMaintenanceCmd(g),
		newSwitchoverCmd(g),
	)
	return root
}

func run(ctx context.Context, args []string) int {
	root := newRootCmd(os.Stdout, os.Stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	return exitCode(err, root.ErrOrStderr())
}

// exitCode prints err (when there is something to say) and maps it to the
// process exit status.
func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintln(stderr, "haconf:", ee.err)
		}
		return ee.code
	}
	fmt.Fprintln(stderr, "haconf:", err)
	var ue *usageError
	switch {
	case errors.As(err, &ue), isCobraUsage(err):
		return exitUsage
	case errors.Is(err, config.ErrInvalid):
		return exitConfig
	}
	return exitFailure
}

func isCobraUsage(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand", "accepts ", "requires at least", "required flag"} {
		if strings.Contains(msg, p) {
			return true
		}
	}
	return false
}
