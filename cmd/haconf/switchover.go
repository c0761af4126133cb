package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/haconf/haconf/drbd"
	"github.com/haconf/haconf/internal/cli"
	"github.com/haconf/haconf/internal/runner"
	"github.com/haconf/haconf/pacemaker"
	"github.com/haconf/haconf/status"
	"github.com/haconf/haconf/switchover"
)

type switchoverOptions struct {
	to      string
	node    string
	dryRun  bool
	timeout time.Duration
	poll    time.Duration
	// run and drbd replace the real runner and DRBD reader in tests.
	run  switchover.Runner
	drbd switchover.DRBDReader
}

func newSwitchoverCmd(g *globals) *cobra.Command {
	return newSwitchoverCmdWith(g, &switchoverOptions{})
}

func newSwitchoverCmdWith(g *globals, o *switchoverOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "switchover [--to NODE] [--dry-run] [--timeout D]",
		Short: "Move the services to the other controller, on purpose, leaving no constraint behind",
		Long: `A planned move of the promoted DRBD instance and the services that follow it
(g-services: the filesystem, MariaDB, haproxy; and the VIP) to the other
controller, or to --to NODE.

It refuses, changing nothing, unless the move is safe: a DC with quorum, no
maintenance mode, both controllers online and clean, the target not in standby,
the services all running, DRBD connected with both disks UpToDate and no resync
(otherwise the move would run on stale data or leave the only good copy
behind), the target's DRBD promotion score set, no constraint keeping the
services off the target (such as DRBD's fence-peer constraint) and no
crm_resource constraint left over. When the target already runs the services it
says so and exits 0.

Then: crm_resource --move --promoted with a lifetime (a temporary constraint
that expires by itself should haconf be killed), a wait until DRBD is Promoted
and every service Started on the target (crm_mon every 2s, up to --timeout,
stopping early on a new failure), and crm_resource --clear, whatever happened
(success, timeout, failure, Ctrl-C). resource-stickiness keeps the services on
the target without the constraint. --dry-run prints the checks and the exact
commands. Exit status: 0 done (or nothing to do), 1 refused or failed, 64 usage.`,
		Example: `  haconf switchover --dry-run
  haconf switchover
  haconf switchover --to ctl1 --timeout 10m`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.timeout <= 0 {
				return cli.UsageError(fmt.Errorf("--timeout %s: must be positive", o.timeout))
			}
			cfg, name, err := g.loadController(o.node)
			if err != nil {
				return err
			}
			if o.to != "" {
				if _, ok := cfg.Node(o.to); !ok {
					return cli.UsageError(fmt.Errorf("--to %q is not one of the controllers %v in %s", o.to, cfg.NodeNames(), cfg.File))
				}
			}
			run := o.run
			if run == nil {
				run = runner.Exec{Timeout: 30 * time.Second}
			}
			dr := o.drbd
			if dr == nil {
				dr = &drbd.Node{Name: name, Run: run, Config: cfg.DRBD}
			}
			pair := switchover.Pair{Nodes: cfg.NodeNames(), Resource: cfg.DRBD.Resource,
				Services: status.Expect{RabbitMQMode: cfg.RabbitMQ.Mode}.Services()}
			out := cmd.OutOrStdout()
			ctx := cmd.Context()

			facts, err := switchover.Gather(ctx, run, dr, name, pair, time.Now())
			if err != nil {
				return err
			}
			d := switchover.Decide(pair, o.to, facts)
			if d.AlreadyActive {
				fmt.Fprintf(out, "%s is already active (DRBD %s Promoted and %s started there): nothing to do\n",
					d.To, pair.Resource, strings.Join(pair.Services, ", "))
				return nil
			}
			m := &switchover.Mover{Run: run, Pair: pair, Timeout: o.timeout, Poll: o.poll}
			verb := "switchover"
			if o.dryRun {
				verb = "switchover (dry run: nothing changed)"
			}
			fmt.Fprintf(out, "%s %s -> %s, checked from %s:\n", verb, dashIfEmpty(d.From), dashIfEmpty(d.To), name)
			writeChecks(out, d)
			if !d.OK() {
				var names []string
				for _, c := range d.Failed() {
					names = append(names, c.Name)
				}
				return fmt.Errorf("switchover refused (%s): nothing was changed", strings.Join(names, ", "))
			}
			if len(d.Expired) > 0 {
				fmt.Fprintf(out, "expired leftover constraint(s) %s: inert; the final crm_resource --clear removes them\n", strings.Join(d.Expired, ", "))
			}
			if o.dryRun {
				writePlan(out, m, pair, d)
				return nil
			}

			fmt.Fprintln(out)
			m.OnEvent = func(e switchover.Event) {
				fmt.Fprintf(out, "%7.1fs  %s\n", e.Elapsed.Seconds(), e.Message)
			}
			res, err := m.Switch(ctx, d, facts.Mon)
			fmt.Fprintln(out)
			if err != nil {
				fmt.Fprintf(out, "switchover %s -> %s FAILED after %s\n", d.From, d.To, secs(res.Total))
				if res.Cleared {
					fmt.Fprintln(out, "the temporary constraint is removed: Pacemaker places the services by its own scores again")
				}
				if res.Final != "" {
					fmt.Fprintf(out, "now: %s (follow with haconf status)\n", res.Final)
				}
				if errors.Is(err, switchover.ErrAborted) {
					return err
				}
				return fmt.Errorf("switchover: %w", err)
			}
			fmt.Fprintf(out, "switchover %s -> %s done in %s: DRBD promoted on %s after %s, every service started after %s; no constraint left\n",
				d.From, d.To, secs(res.Total), d.To, secs(res.PromotedAfter), secs(res.StartedAfter))
			fmt.Fprintf(out, "now: %s\n", res.Final)
			return nil
		},
	}
	cmd.Flags().StringVar(&o.to, "to", "", "the controller to move the services to (default: the other one)")
	cmd.Flags().StringVar(&o.node, "node", "", "this controller's name (default: the short hostname)")
	cmd.Flags().BoolVar(&o.dryRun, "dry-run", false, "print the checks and the exact commands, change nothing")
	cmd.Flags().DurationVar(&o.timeout, "timeout", switchover.DefaultTimeout, "how long to wait for the services to run on the target")
	return cmd
}

func secs(d time.Duration) string { return fmt.Sprintf("%.1fs", d.Seconds()) }

func writeChecks(w io.Writer, d switchover.Decision) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, c := range d.Checks {
		mark := "ok"
		if !c.OK {
			mark = "REFUSED"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", mark, c.Name, c.Detail)
	}
	tw.Flush()
}

func writePlan(w io.Writer, m *switchover.Mover, p switchover.Pair, d switchover.Decision) {
	c := m.Commands(d.To)
	poll := switchover.DefaultPoll
	if m.Poll > 0 {
		poll = m.Poll
	}
	fmt.Fprintln(w, "would run:")
	fmt.Fprintf(w, "  %s\n      prefer %s for the promoted DRBD instance; %s follows it (colocation); the constraint ends by itself after %s if haconf is killed\n",
		shellJoin(c.Move), d.To, pacemaker.Group, m.Lifetime())
	fmt.Fprintf(w, "  crm_mon --output-as=xml --inactive    (every %s, up to %s)\n      until DRBD %s is Promoted and %s are Started on %s; stops early on a new failure\n",
		poll, m.Timeout, p.Resource, strings.Join(p.Services, ", "), d.To)
	fmt.Fprintf(w, "  %s\n      always (done, timeout, failure, Ctrl-C): no constraint is left; resource-stickiness keeps the services on %s\n",
		shellJoin(c.Clear), d.To)
	fmt.Fprintf(w, "  %s\n      let the cluster settle, then check that the services stayed on %s\n", shellJoin(c.Settle), d.To)
}
