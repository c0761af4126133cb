package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/haconf/haconf/internal/cli"
	"github.com/haconf/haconf/internal/runner"
	"github.com/haconf/haconf/pacemaker"
)

// defaultMaintenanceTTL is how long `haconf maintenance on` lasts unless
// told otherwise.
const defaultMaintenanceTTL = time.Hour

type maintenanceOptions struct {
	ttl      time.Duration
	noExpiry bool
	dryRun   bool
	output   string
}

func newMaintenanceCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "maintenance",
		Short: "Cluster-wide maintenance mode that ends by itself",
		Long: `In maintenance mode Pacemaker monitors, starts, stops and recovers nothing:
the services keep running as they are, and work on them (a MariaDB upgrade, a
DRBD resize) does not trigger a failover.

haconf sets maintenance-mode=true in a cluster property set of its own
(` + pacemaker.MaintenanceSetID + `) with a rule that holds only until the end of the window.
Pacemaker evaluates the rule itself and rechecks at its end, so maintenance
ends on time even if nobody, and no haconf process, is around. A
maintenance-mode property in cib-bootstrap-options (pcs property set,
crm_attribute) would override it, so "on" moves it into haconf's window and
"off" removes it. Needs no haconf.yaml.`,
		Example: `  haconf maintenance on --ttl 30m
  haconf maintenance status
  haconf maintenance off`,
	}
	cmd.AddCommand(newMaintenanceOnCmd(g), newMaintenanceOffCmd(g), newMaintenanceStatusCmd(g))
	return cmd
}

func maintenanceRunner() runner.Exec { return runner.Exec{Timeout: 30 * time.Second} }

// readMaintenance reads the crm_config section and crm_mon's view.
func readMaintenance(ctx context.Context, run runner.Runner) (pacemaker.MaintenanceConfig, pacemaker.CrmMon, error) {
	cl := pacemaker.Cluster{Run: run}
	out, err := cl.Query(ctx, pacemaker.ScopeCrmConfig)
	if err != nil {
		return pacemaker.MaintenanceConfig{}, pacemaker.CrmMon{}, fmt.Errorf("read the cluster properties: %w", err)
	}
	m, err := pacemaker.ParseMaintenanceConfig(out)
	if err != nil {
		return m, pacemaker.CrmMon{}, err
	}
	mon, err := cl.Status(ctx)
	if err != nil {
		return m, mon, fmt.Errorf("read the cluster state: %w", err)
	}
	return m, mon, nil
}

// applyChanges makes changes in the CIB, in order; with dryRun it only
// prints them and returns false.
func applyChanges(ctx context.Context, run runner.Runner, out io.Writer, changes []pacemaker.Command, dryRun bool) (bool, error) {
	if dryRun {
		fmt.Fprintln(out, "would run (dry run, nothing changed):")
		printChanges(out, changes)
		return false, nil
	}
	for i, c := range changes {
		if _, err := (pacemaker.Cluster{Run: run}).Do(ctx, c.Argv); err != nil {
			if i > 0 {
				return true, fmt.Errorf("%w (the first %d change(s) were made: haconf maintenance status shows where it stands)", err, i)
			}
			return true, err
		}
	}
	return true, nil
}

func printChanges(w io.Writer, changes []pacemaker.Command) {
	if len(changes) == 0 {
		fmt.Fprintln(w, "nothing to change")
	}
	for _, c := range changes {
		fmt.Fprintf(w, "  %s\n      %s\n", shellJoin(c.Argv), c.Why)
	}
}

func newMaintenanceOnCmd(g *globals) *cobra.Command {
	o := &maintenanceOptions{}
	cmd := &cobra.Command{
		Use:   "on [--ttl DURATION | --no-expiry] [--dry-run]",
		Short: "Put the cluster in maintenance mode until --ttl from now (default 1h)",
		Long: `Puts the whole cluster in maintenance mode for --ttl (default 1h, at least 1m).
Running it again replaces the window (to extend or shorten it). --no-expiry is
a maintenance mode that only "haconf maintenance off" ends; --ttl 0 is refused
so that one never happens by accident.`,
		Example: `  haconf maintenance on                 # one hour
  haconf maintenance on --ttl 2h30m
  haconf maintenance on --ttl 20m --dry-run
  haconf maintenance on --no-expiry     # until haconf maintenance off`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case o.noExpiry && cmd.Flags().Changed("ttl"):
				return cli.UsageError(errors.New("--ttl and --no-expiry exclude each other"))
			case !o.noExpiry && o.ttl == 0:
				return cli.UsageError(errors.New("--ttl 0 would never end: say --no-expiry if that is what you want"))
			case !o.noExpiry && o.ttl < time.Minute:
				return cli.UsageError(fmt.Errorf("--ttl %s: must be at least 1m", o.ttl))
			}
			ctx, run, out := cmd.Context(), maintenanceRunner(), cmd.OutOrStdout()
			m, _, err := readMaintenance(ctx, run)
			if err != nil {
				return err
			}
			var until time.Time
			if !o.noExpiry {
				until = time.Now().Add(o.ttl)
			}
			changes := m.OnChanges(until)
			if applied, err := applyChanges(ctx, run, out, changes, o.dryRun); !applied || err != nil {
				return err
			}
			m2, mon, err := readMaintenance(ctx, run)
			if err != nil {
				return err
			}
			st := m2.State(mon.MaintenanceAll, time.Now())
			if !st.On {
				why := "is this node's clock right?"
				if len(m2.Others) > 0 {
					why = "cluster_property_set " + strings.Join(m2.Others, ", ") + " may override it with a higher score"
				}
				return fmt.Errorf("maintenance-mode is still off after the change: %s", why)
			}
			if o.noExpiry {
				fmt.Fprintln(out, "maintenance on with NO END (--no-expiry): Pacemaker monitors, starts and stops nothing until: haconf maintenance off")
			} else {
				fmt.Fprintf(out, "maintenance on until %s (%s from now): Pacemaker monitors, starts and stops nothing.\n", pacemaker.FormatCIBTime(st.Until), roundDuration(time.Until(st.Until)))
				fmt.Fprintln(out, "It ends by itself then; to end it now: haconf maintenance off")
			}
			if m.Bootstrap == "true" {
				fmt.Fprintln(out, "note: the permanent maintenance-mode=true in cib-bootstrap-options was replaced by this window")
			}
			if len(m2.Others) > 0 {
				fmt.Fprintf(out, "note: cluster_property_set %s also sets maintenance-mode; haconf leaves it alone\n", strings.Join(m2.Others, ", "))
			}
			return nil
		},
	}
	cmd.Flags().DurationVar(&o.ttl, "ttl", defaultMaintenanceTTL, "how long maintenance lasts; Pacemaker ends it by itself")
	cmd.Flags().BoolVar(&o.noExpiry, "no-expiry", false, "maintenance that only 'haconf maintenance off' ends")
	cmd.Flags().BoolVar(&o.dryRun, "dry-run", false, "print the cibadmin commands and change nothing")
	return cmd
}

func newMaintenanceOffCmd(g *globals) *cobra.Command {
	o := &maintenanceOptions{}
	cmd := &cobra.Command{
		Use:   "off [--dry-run]",
		Short: "End maintenance mode now",
		Long: `Removes haconf's maintenance window and a maintenance-mode=true in
cib-bootstrap-options. Pacemaker then manages the resources again: it re-reads
their state and recovers what is not as it should be, so put services back
the way Pacemaker left them before ending maintenance.`,
		Example: `  haconf maintenance off
  haconf maintenance off --dry-run`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, run, out := cmd.Context(), maintenanceRunner(), cmd.OutOrStdout()
			m, mon, err := readMaintenance(ctx, run)
			if err != nil {
				return err
			}
			changes := m.OffChanges()
			if applied, err := applyChanges(ctx, run, out, changes, o.dryRun); !applied || err != nil {
				return err
			}
			if len(changes) > 0 {
				if _, mon, err = readMaintenance(ctx, run); err != nil {
					return err
				}
			}
			if mon.MaintenanceAll {
				return fmt.Errorf("maintenance-mode is still on, set by cluster_property_set %s (not haconf's): remove that set or its maintenance-mode with cibadmin", strings.Join(m.Others, ", "))
			}
			if len(changes) == 0 {
				fmt.Fprintln(out, "maintenance was already off")
				return nil
			}
			fmt.Fprintln(out, "maintenance off: Pacemaker manages the resources again")
			return nil
		},
	}
	cmd.Flags().BoolVar(&o.dryRun, "dry-run", false, "print the cibadmin commands and change nothing")
	return cmd
}

// maintenanceReport is `haconf maintenance status -o json`.
type maintenanceReport struct {
	pacemaker.MaintenanceState
	// RemainingSeconds is the time left until Until: present whenever
	// maintenance has an end, 0 included.
	RemainingSeconds *int64   `json:"remaining_seconds,omitempty"`
	NodesInMaint     []string `json:"nodes_in_maintenance"`
}

func newMaintenanceStatusCmd(g *globals) *cobra.Command {
	o := &maintenanceOptions{}
	cmd := &cobra.Command{
		Use:   "status [-o json]",
		Short: "Whether the cluster is in maintenance mode, who set it and when it ends",
		Example: `  haconf maintenance status
  haconf maintenance status -o json | jq -r .until`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			m, mon, err := readMaintenance(cmd.Context(), maintenanceRunner())
			if err != nil {
				return err
			}
			now := time.Now()
			rep := maintenanceReport{MaintenanceState: m.State(mon.MaintenanceAll, now), NodesInMaint: []string{}}
			if !rep.Until.IsZero() {
				left := max(int64(rep.Until.Sub(now).Seconds()), 0)
				rep.RemainingSeconds = &left
			}
			for _, n := range mon.Nodes {
				if n.Maintenance {
					rep.NodesInMaint = append(rep.NodesInMaint, n.Name)
				}
			}
			if o.output == "json" {
				return cli.WriteJSON(cmd.OutOrStdout(), "haconf.maintenance.status/v1", rep)
			}
			fmt.Fprintln(cmd.OutOrStdout(), maintenanceLine(rep.MaintenanceState, m, now))
			if len(rep.NodesInMaint) > 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "nodes in maintenance: %s\n", strings.Join(rep.NodesInMaint, ", "))
			}
			return nil
		},
	}
	cli.OutputFlag(cmd, &o.output, "text", "json")
	return cmd
}

// maintenanceLine says in one line whether maintenance is on and why.
func maintenanceLine(st pacemaker.MaintenanceState, m pacemaker.MaintenanceConfig, now time.Time) string {
	if !st.On {
		if !st.Ended.IsZero() {
			return fmt.Sprintf("maintenance: off (haconf's last window ended at %s)", pacemaker.FormatCIBTime(st.Ended))
		}
		return "maintenance: off"
	}
	switch st.Source {
	case pacemaker.SourceHaconf:
		if st.Until.IsZero() {
			if m.Haconf != nil && m.Haconf.Unrecognized {
				return "maintenance: ON (haconf's set, but its rule was edited: end unknown); haconf maintenance off ends it"
			}
			return "maintenance: ON with no end (haconf maintenance on --no-expiry); haconf maintenance off ends it"
		}
		return fmt.Sprintf("maintenance: ON until %s (%s left, ends by itself); haconf maintenance off ends it now", pacemaker.FormatCIBTime(st.Until), roundDuration(st.Until.Sub(now)))
	case pacemaker.SourceBootstrap:
		return "maintenance: ON with no end (maintenance-mode=true in cib-bootstrap-options, set outside haconf); haconf maintenance off ends it"
	case pacemaker.SourceOther:
		return fmt.Sprintf("maintenance: ON (cluster_property_set %s, not haconf's)", st.SetID)
	}
	return "maintenance: ON (source unknown)"
}

func roundDuration(d time.Duration) time.Duration {
	if d < 0 {
		return 0
	}
	return d.Round(time.Second)
}

// shellJoin renders argv so it can be pasted into a shell.
func shellJoin(argv []string) string {
	out := make([]string, len(argv))
	for i, a := range argv {
		if a != "" && strings.IndexFunc(a, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_=./:,@%+", r))
		}) < 0 {
			out[i] = a
			continue
		}
		out[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(out, " ")
}
