package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/haconf/haconf/bootstrap"
	"github.com/haconf/haconf/internal/cli"
	"github.com/haconf/haconf/internal/runner"
)

type bootstrapOptions struct {
	node          string
	secrets       string
	dryRun        bool
	skipPreflight bool
	timeout       time.Duration
	drbdVersion   string
	output        string
	wait          bool
}

func newBootstrapCmd(g *globals) *cobra.Command {
	o := &bootstrapOptions{}
	cmd := &cobra.Command{
		Use:   "bootstrap",
		Short: "Make this controller its half of the HA pair (run on both controllers)",
		Long: `Runs the preflight checks (stopping before any change if one fails, with its
fix), then: installs missing packages, installs the shared secrets from the
secrets file (corosync authkey, Erlang cookie, MySQL credentials, fence
passwords: a fence password file already on the node is kept when the secrets
file has no password for it), renders and
writes every cluster file, creates DRBD metadata and brings the resource up,
starts the initial sync from the first node, makes the filesystem and MariaDB's
datadir on the DRBD volume (first node), starts corosync and Pacemaker, pushes
the CIB once (first node) and waits until every resource runs.

Run it on both controllers at about the same time (the playbook does): steps
wait for the peer. Every step looks before it acts: a second run reports no
changes and changes nothing. --dry-run prints the full plan.`,
		Example: `  haconf bootstrap -c /etc/haconf/haconf.yaml --dry-run
  haconf bootstrap -c /etc/haconf/haconf.yaml --secrets /etc/haconf/secrets.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.loadConfig()
			if err != nil {
				return err
			}
			// This host's name is read once: the default --node and
			// preflight's hostname check.
			host := bootstrap.ThisHost(runner.Exec{})
			name := o.node
			if name == "" {
				name = bootstrap.ShortName(host.Name)
			}
			node, err := controllerName(c, name)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			text := o.output == "text"
			// Read before preflight: it asks the fence devices with the
			// passwords the secrets file holds.
			secrets, err := bootstrap.LoadSecrets(o.secrets)
			if err != nil {
				return err
			}
			if !o.skipPreflight {
				checks, perr := bootstrap.Preflight(cmd.Context(), host, c, node, secrets)
				if perr != nil {
					for _, ch := range checks {
						if ch.Failed() {
							fmt.Fprintf(w, "FAIL %-18s %s\n     %-18s fix: %s\n", ch.Name, ch.Detail, "", ch.Fix)
						}
					}
					if checks == nil {
						return perr
					}
					return cli.WithCode(cli.ExitFailure, perr)
				}
				if text {
					unknown := 0
					for _, ch := range checks {
						if ch.Unknown {
							unknown++
							fmt.Fprintf(w, "??   %-18s %s\n     %-18s fix: %s\n", ch.Name, ch.Detail, "", ch.Fix)
						}
					}
					fmt.Fprintf(w, "preflight: %d checks passed, %d unknown\n", len(checks)-unknown, unknown)
				}
			}
			ver := o.drbdVersion
			if ver == "" {
				ver, _ = resolveDRBDVersion(cmd.Context(), c.DRBD.Version)
			}
			b := &bootstrap.Bootstrap{
				Cfg: c, Node: node, Secrets: secrets, R: runner.Exec{Timeout: 10 * time.Minute},
				Log: g.logger, DryRun: o.dryRun, DRBDVersion: ver, Timeout: o.timeout, NoWait: !o.wait,
			}
			if text {
				b.Progress = func(r bootstrap.Result) {
					mark := "ok     "
					if r.Changed {
						mark = "changed"
					}
					fmt.Fprintf(w, "%s %-14s %s\n", mark, r.Step, r.Detail)
				}
			}
			results, err := b.Run(cmd.Context())
			if !text {
				if werr := cli.WriteJSON(w, "haconf.bootstrap/v1", map[string]any{"node": node, "dry_run": o.dryRun, "steps": results, "error": errString(err)}); werr != nil && err == nil {
					err = werr
				}
			}
			if err != nil {
				return err
			}
			changed := 0
			for _, r := range results {
				if r.Changed {
					changed++
				}
			}
			if text {
				switch {
				case o.dryRun:
					fmt.Fprintf(w, "dry run: %d of %d steps would change something; nothing was changed\n", changed, len(results))
				case changed == 0:
					fmt.Fprintf(w, "%s: no changes\n", node)
				default:
					fmt.Fprintf(w, "%s: bootstrapped (%d steps changed something)\n", node, changed)
				}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.node, "node", "", "controller to bootstrap as (default: this host's name)")
	f.StringVar(&o.secrets, "secrets", defaultSecrets, "secrets file from `haconf secrets generate` (mode 0600)")
	f.BoolVar(&o.dryRun, "dry-run", false, "print the plan and change nothing")
	f.BoolVar(&o.skipPreflight, "skip-preflight", false, "do not run the preflight checks")
	f.DurationVar(&o.timeout, "timeout", 5*time.Minute, "how long each wait (peer, membership, resources) may take")
	f.StringVar(&o.drbdVersion, "drbd-version", "", "DRBD syntax 8.4 or 9 (default: drbd.version, detected when auto)")
	cli.OutputFlag(cmd, &o.output, "text", "json")
	f.BoolVar(&o.wait, "wait", true, "wait until every resource runs")
	return cmd
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
