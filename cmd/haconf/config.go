package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/haconf/haconf/internal/cli"
	"github.com/haconf/haconf/internal/config"
)

func newConfigCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Write and check haconf.yaml",
		Example: `  haconf config example > /etc/haconf/haconf.yaml
  haconf config validate -c /etc/haconf/haconf.yaml`,
	}
	cmd.AddCommand(newConfigExampleCmd(), newConfigValidateCmd(g))
	return cmd
}

func newConfigExampleCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "example",
		Short:   "Print a complete, commented example configuration for a two-node pair",
		Example: "  haconf config example > haconf.yaml",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			_, err := cmd.OutOrStdout().Write(config.Example())
			return err
		},
	}
}

func newConfigValidateCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "validate",
		Short: "Check haconf.yaml and list every problem at once",
		Long: `Checks the file strictly: unknown keys, wrong types, bad values and the rules
that span sections (VIP inside a cluster network, two distinct controllers,
fencing configured or explicitly waived, valid cron expressions). Every
problem is listed with its line, key and value. Exits 0 when valid, 3 when not.`,
		Example: "  haconf config validate -c /etc/haconf/haconf.yaml",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := config.Load(g.configFile)
			var p *config.Problems
			if errors.As(err, &p) {
				fmt.Fprintf(cmd.ErrOrStderr(), "%s: %d problem(s)\n", p.File, len(p.Errs))
				for _, e := range p.Errs {
					fmt.Fprintln(cmd.ErrOrStderr(), "  "+e.Error())
				}
				return cli.SilentExit(cli.ExitConfig)
			}
			if err != nil {
				return err
			}
			if c.ComputeOnly() {
				fmt.Fprintf(cmd.OutOrStdout(), "%s: valid (compute failover only: %d compute hosts, no controller pair)\n", c.File, len(c.Compute.Hosts))
				return nil
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: valid (cluster %s, controllers %v)\n", c.File, c.Cluster.Name, c.NodeNames())
			if !c.Fencing.Safe() {
				fmt.Fprintln(cmd.OutOrStdout(), "WARNING: fencing is disabled (type: none): UNSAFE, a partition can run MariaDB on both controllers")
			}
			return nil
		},
	}
}
