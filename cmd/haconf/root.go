package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/haconf/haconf/internal/cli"
	"github.com/haconf/haconf/internal/config"
)

// globals are the flags every command shares.
type globals struct {
	configFile string
	verbose    bool
	logger     *slog.Logger
	// backupCredentials is haconf backup's --credentials.
	backupCredentials string
}

// loadConfig reads haconf.yaml for a command of the controller pair: a
// compute-only file (no nodes:) is refused.
func (g *globals) loadConfig() (*config.Config, error) {
	c, err := config.Load(g.configFile)
	if err == nil && c.ComputeOnly() {
		return nil, cli.WithCode(cli.ExitConfig, fmt.Errorf("%s configures compute failover only (no nodes:): this command needs the controller pair's configuration", c.File))
	}
	return c, err
}

// loadComputeConfig reads haconf.yaml for a compute command: it must have
// a compute: section.
func (g *globals) loadComputeConfig() (*config.Config, error) {
	c, err := config.Load(g.configFile)
	if err == nil && c.Compute == nil {
		return nil, cli.WithCode(cli.ExitConfig, fmt.Errorf("%s has no compute: section (see haconf config example)", c.File))
	}
	return c, err
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
		return "", cli.Usagef("this node %q is not one of the controllers %v in %s (use --node)", name, c.NodeNames(), c.File)
	}
	return name, nil
}

// loadController reads haconf.yaml and names the controller a command acts
// as (see controllerName).
func (g *globals) loadController(nodeFlag string) (*config.Config, string, error) {
	c, err := g.loadConfig()
	if err != nil {
		return nil, "", err
	}
	name, err := controllerName(c, nodeFlag)
	if err != nil {
		return nil, "", err
	}
	return c, name, nil
}

func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:   "haconf",
		Short: "Make two OpenStack controllers a highly available pair (DRBD, Corosync, Pacemaker)",
		Long: `haconf turns two fresh controllers into an active/passive pair on DRBD, Corosync
and Pacemaker with fencing, and keeps it healthy: MariaDB on DRBD, RabbitMQ,
the API virtual IP behind haproxy, safe split-brain resolution, backups that
are proven by restore, and compute-node failover.

Exit status, the same for every command:
  0   ok (status: healthy)
  1   failed, or a check failed (status: degraded)
  2   status: a service is down
  3   the configuration is invalid
  64  usage: unknown command, bad flag or value, wrong arguments
  70  internal error (a bug in haconf: please report it)
Reporting commands take -o text|json; the JSON field names are snake_case
and stable.`,
		Example: `  haconf config example > haconf.yaml
  haconf config validate -c haconf.yaml
  haconf plan -c haconf.yaml --node ctl1
  haconf render -c haconf.yaml --node ctl1 --root /`,
		PersistentPreRun: func(cmd *cobra.Command, args []string) {
			g.logger = cli.NewLogger(cmd.ErrOrStderr(), g.verbose)
		},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.PersistentFlags().StringVarP(&g.configFile, "config", "c", "/etc/haconf/haconf.yaml", "haconf.yaml to read")
	root.PersistentFlags().BoolVarP(&g.verbose, "verbose", "v", false, "log debug messages")
	root.AddCommand(
		newConfigCmd(g),
		newRenderCmd(g),
		newPlanCmd(g),
		newVersionCmd(),
		newSecretsCmd(g),
		newPreflightCmd(g),
		newBootstrapCmd(g),
		newDRBDCmd(g),
		newStatusCmd(g),
		newSplitBrainCmd(g),
		newBackupCmd(g),
		newWatchdogCmd(g),
		newOCFCmd(),
		newMaintenanceCmd(g),
		newSwitchoverCmd(g),
		newComputeCmd(g),
		newOpenStackCmd(g),
	)
	cli.Setup(root)
	return root
}

// exitCode is cli.ExitCode for haconf: an invalid haconf.yaml exits 3
// (cli.ExitConfig) wherever it was found, unless the error carries a code.
func exitCode(err error, stderr io.Writer) int {
	var ee *cli.ExitError
	if errors.Is(err, config.ErrInvalid) && !errors.As(err, &ee) {
		err = cli.WithCode(cli.ExitConfig, err)
	}
	return cli.ExitCode(err, stderr)
}
