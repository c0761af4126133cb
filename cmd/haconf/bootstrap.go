package main

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/haconf/haconf/internal/bootstrap"
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
secrets file (corosync authkey, Erlang cookie, MySQL credentials), renders and
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
			node, err := controllerName(c, o.node)
			if err != nil {
				return err
			}
			if o.output != "text" && o.output != "json" {
				return &usageError{fmt.Errorf("-o %q: must be text or json", o.output)}
			}
			w := cmd.OutOrStdout()
			text := o.output == "text"
			if !o.skipPreflight {
				checks, perr := bootstrap.Preflight(cmd.Context(), bootstrap.LocalHost{R: runner.Exec{}}, c, node)
				if perr != nil {
					for _, ch := range checks {
						if !ch.OK {
							fmt.Fprintf(w, "FAIL %-18s %s\n     %-18s fix: %s\n", ch.Name, ch.Detail, "", ch.Fix)
						}
					}
					if checks == nil {
						return perr
					}
					return withCode(exitFailure, perr)
				}
				if text {
					fmt.Fprintf(w, "preflight: %d checks passed\n", len(checks))
				}
			}
			secrets, err := bootstrap.LoadSecrets(o.secrets)
			if err != nil {
				return err
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
				enc := json.NewEncoder(w)
				enc.SetIndent("", "  ")
				enc.Encode(map[string]any{"node": node, "dry_run": o.dryRun, "steps": results, "error": errString(err)})
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
	f.StringVar(&o.secrets, "secrets", "/etc/haconf/secrets.yaml", "secrets file from `haconf secrets generate` (mode 0600)")
	f.BoolVar(&o.dryRun, "dry-run", false, "print the plan and change nothing")
	f.BoolVar(&o.skipPreflight, "skip-preflight", false, "do not run the preflight checks")
	f.DurationVar(&o.timeout, "timeout", 5*time.Minute, "how long each wait (peer, membership, resources) may take")
	f.StringVar(&o.drbdVersion, "drbd-version", "", "DRBD syntax 8.4 or 9 (default: drbd.version, detected when auto)")
	f.StringVarP(&o.output, "output", "o", "text", "text or json")
	f.BoolVar(&o.wait, "wait", true, "wait until every resource runs")
	return cmd
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
