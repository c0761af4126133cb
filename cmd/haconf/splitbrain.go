package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/haconf/haconf/drbd"
	"github.com/haconf/haconf/internal/cli"
	"github.com/haconf/haconf/internal/config"
	"github.com/haconf/haconf/internal/runner"
	"github.com/haconf/haconf/mysql"
	"github.com/haconf/haconf/splitbrain"
	"github.com/haconf/haconf/watchdog"
)

// pairEnv is this controller and its peer, built from haconf.yaml.
//
// The peer is reached through its watchdog's HTTP endpoint
// (on the peer's management address, at watchdog.listen's port, 9750 by default):
// it carries structured evidence (generation UUIDs, binlog position) both
// ways, answers at once, and lets the victim re-check the decision before
// it discards anything. Pacemaker node attributes would go through the CIB,
// hold only short strings, need polling, and are exactly what is being
// repaired during a recovery. Requests and answers are signed with a key
// derived from watchdog.peer_key_file (the corosync authkey).
type pairEnv struct {
	cfg    *config.Config
	local  *splitbrain.Node
	peer   *watchdog.PeerClient
	engine *splitbrain.Engine
	store  *splitbrain.IncidentStore
}

func newPairEnv(g *globals, nodeFlag string, policy *splitbrain.Policy) (*pairEnv, error) {
	cfg, name, err := g.loadController(nodeFlag)
	if err != nil {
		return nil, err
	}
	peerNode, _ := cfg.Peer(name)
	key, err := watchdog.LoadPeerKey(cfg.Watchdog.PeerKeyFile)
	if err != nil {
		return nil, err
	}
	run := runner.Exec{Timeout: 30 * time.Second}
	store := &splitbrain.IncidentStore{Dir: cfg.DRBD.SplitBrain.IncidentDir}
	local := &splitbrain.Node{Node: drbd.Node{Name: name, Run: run, Config: cfg.DRBD}, VIP: vipHost(cfg.VIP.Address), Incidents: store, Log: g.logger}
	if cfg.MySQL.BinaryLog == nil || *cfg.MySQL.BinaryLog {
		local.MySQL = splitbrain.MariaDB{Probe: mysql.Binlog{Run: run, CredentialsFile: cfg.MySQL.CredentialsFile}}
	}
	peer := &watchdog.PeerClient{Name: peerNode.Name, BaseURL: "http://" + net.JoinHostPort(peerNode.Management, cfg.WatchdogPort()),
		// The peer gathers its evidence (drbdsetup, crm_mon, the binlog
		// position) while answering: 10 s ran out on a loaded node, and the
		// engine refused for want of evidence. The check's own 60 s bound it.
		HTTP: &http.Client{Timeout: 0}, Key: key, ReadTimeout: 25 * time.Second}
	pol := splitbrain.PolicyFrom(cfg.DRBD.SplitBrain)
	if policy != nil && policy.Name != "" {
		pol = *policy
	}
	e := &splitbrain.Engine{Local: local, Peer: peer, Policy: pol, Incidents: store, Log: g.logger}
	return &pairEnv{cfg: cfg, local: local, peer: peer, engine: e, store: store}, nil
}

func vipHost(cidr string) string { return strings.SplitN(cidr, "/", 2)[0] }

type splitBrainOptions struct {
	node     string
	resource string
	output   string
	policy   string
	prefer   string
	dryRun   bool
	yes      bool
}

func (o *splitBrainOptions) policyFlag() (*splitbrain.Policy, error) {
	switch o.policy {
	case "":
		if o.prefer != "" {
			return &splitbrain.Policy{Name: drbd.PolicyPrefer, Prefer: o.prefer}, nil
		}
		return nil, nil
	case drbd.PolicyAuto, drbd.PolicyLeastChanges, drbd.PolicyManual:
		return &splitbrain.Policy{Name: o.policy}, nil
	case drbd.PolicyPrefer:
		if o.prefer == "" {
			return nil, cli.UsageError(errors.New("--policy prefer needs --prefer NODE"))
		}
		return &splitbrain.Policy{Name: o.policy, Prefer: o.prefer}, nil
	}
	return nil, cli.UsageError(fmt.Errorf("--policy %q: must be auto, least-changes, prefer or manual", o.policy))
}

func newSplitBrainCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "splitbrain",
		Short: "Detect, plan and resolve DRBD split brain without losing a write",
		Long: `haconf resolves a DRBD split brain from evidence gathered on both controllers:
generation UUIDs, out-of-sync amounts, which node Pacemaker promoted and when,
which node the DRBD fence constraint lets be promoted, which node holds the
VIP, MariaDB's binlog position. Policies (drbd.split_brain in haconf.yaml):
auto (default) discards a side without changes, otherwise the side Pacemaker
did not promote, and refuses on unrelated data or conflicting evidence (such
as a node reported promoted that the fence constraint, placed when
replication broke, does not allow: a Primary forced outside Pacemaker);
least-changes; prefer NODE; manual (report only).

The victim's data is preserved before it is discarded: an LVM snapshot of its
backing volume, or a SHA-256 verified copy in split_brain.preserve_dir. Every
incident is recorded as JSON in split_brain.incident_dir.

The peer is reached through its watchdog endpoint (watchdog.listen). The
survivor acts; the victim re-checks the decision before discarding.`,
		Example: `  haconf splitbrain status
  haconf splitbrain plan
  haconf splitbrain resolve --dry-run
  haconf splitbrain resolve --yes`,
	}
	cmd.AddCommand(newSplitBrainStatusCmd(g), newSplitBrainPlanCmd(g), newSplitBrainResolveCmd(g), newSplitBrainNotifyCmd(g))
	return cmd
}

func addSplitBrainFlags(cmd *cobra.Command, o *splitBrainOptions) {
	cmd.Flags().StringVar(&o.node, "node", "", "this controller's name (default: the short hostname)")
	cmd.Flags().StringVarP(&o.resource, "resource", "r", "", "DRBD resource (default: drbd.resource)")
}

func addPolicyFlags(cmd *cobra.Command, o *splitBrainOptions) {
	cli.StringEnumFlag(cmd, &o.policy, "policy", "", "", []string{drbd.PolicyAuto, drbd.PolicyLeastChanges, drbd.PolicyPrefer, drbd.PolicyManual},
		"override drbd.split_brain.policy")
	cmd.Flags().StringVar(&o.prefer, "prefer", "", "the node that survives with --policy prefer")
}

func (o *splitBrainOptions) res(cfg *config.Config) string {
	if o.resource != "" {
		return o.resource
	}
	return cfg.DRBD.Resource
}

// plan builds the pair with the policy the flags choose and plans the
// resolution of the flags' resource. A nil plan comes with the error that
// prevented it.
func (o *splitBrainOptions) plan(ctx context.Context, g *globals) (*pairEnv, *splitbrain.Plan, error) {
	pol, err := o.policyFlag()
	if err != nil {
		return nil, nil, err
	}
	env, err := newPairEnv(g, o.node, pol)
	if err != nil {
		return nil, nil, err
	}
	plan, err := env.engine.Plan(ctx, o.res(env.cfg), env.engine.Policy)
	return env, plan, err
}

// statusReport is `splitbrain status -o json`.
type statusReport struct {
	Node      string                `json:"node"`
	State     *drbd.Resource        `json:"state,omitempty"`
	StateErr  string                `json:"state_error,omitempty"`
	Incidents []splitbrain.Incident `json:"incidents"`
	// PeerIncidents are the peer's records (absent when unreachable).
	PeerIncidents []splitbrain.Incident `json:"peer_incidents,omitempty"`
	PeerError     string                `json:"peer_error,omitempty"`
}

func newSplitBrainStatusCmd(g *globals) *cobra.Command {
	o := &splitBrainOptions{}
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the DRBD connection and every recorded split-brain incident (both nodes)",
		Example: `  haconf splitbrain status
  haconf splitbrain status -o json | jq '.incidents[] | {id, victim, preserved: .preserved.path}'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			env, err := newPairEnv(g, o.node, nil)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			rep := statusReport{Node: env.local.Name}
			if r, err := env.local.State(ctx, o.res(env.cfg)); err != nil {
				rep.StateErr = err.Error()
			} else {
				rep.State = &r
			}
			if rep.Incidents, err = env.store.List(); err != nil {
				return err
			}
			if rep.Incidents == nil {
				rep.Incidents = []splitbrain.Incident{}
			}
			pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			if rep.PeerIncidents, err = env.peer.Incidents(pctx); err != nil {
				rep.PeerError = err.Error()
			}
			if o.output == "json" {
				return cli.WriteJSON(cmd.OutOrStdout(), "haconf.splitbrain.status/v1", rep)
			}
			out := cmd.OutOrStdout()
			if rep.State != nil {
				r := rep.State
				fmt.Fprintf(out, "%s on %s: %s %s/%s %s/%s, %d KiB out of sync\n", r.Name, rep.Node, r.Connection, r.Role, r.PeerRole, r.Disk, r.PeerDisk, r.OutOfSyncKiB)
			} else {
				fmt.Fprintf(out, "DRBD state unknown on %s: %s\n", rep.Node, rep.StateErr)
			}
			all := append(append([]splitbrain.Incident{}, rep.Incidents...), rep.PeerIncidents...)
			if len(all) == 0 {
				fmt.Fprintln(out, "no split-brain incidents recorded")
			} else {
				tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "INCIDENT\tRECORDED ON\tROLE\tRESULT\tVICTIM\tPRESERVED")
				for _, inc := range all {
					pres := "-"
					if inc.Preserved != nil {
						pres = inc.Preserved.Node + ":" + inc.Preserved.Path
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", inc.ID, inc.Node, inc.Role, inc.Result, dashIfEmpty(inc.Victim), pres)
				}
				tw.Flush()
			}
			if rep.PeerError != "" {
				fmt.Fprintf(out, "peer incidents not read: %s\n", rep.PeerError)
			}
			return nil
		},
	}
	addSplitBrainFlags(cmd, o)
	cli.OutputFlag(cmd, &o.output, "text", "json")
	return cmd
}

func newSplitBrainPlanCmd(g *globals) *cobra.Command {
	o := &splitBrainOptions{}
	cmd := &cobra.Command{
		Use:   "plan",
		Short: "Show the evidence, the decision and the exact commands, changing nothing",
		Example: `  haconf splitbrain plan
  haconf splitbrain plan --policy least-changes -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			env, plan, err := o.plan(cmd.Context(), g)
			if plan == nil {
				return err
			}
			if o.output == "json" {
				if werr := cli.WriteJSON(cmd.OutOrStdout(), "haconf.splitbrain.plan/v1", plan); werr != nil {
					return werr
				}
			} else {
				printSplitBrainPlan(cmd.OutOrStdout(), plan, env)
			}
			return err
		},
	}
	addSplitBrainFlags(cmd, o)
	addPolicyFlags(cmd, o)
	cli.OutputFlag(cmd, &o.output, "text", "json")
	return cmd
}

func printSplitBrainPlan(out io.Writer, p *splitbrain.Plan, env *pairEnv) {
	fmt.Fprintf(out, "resource %s, generations: %s\n", p.Resource, dashIfEmpty(string(p.Decision.Relation)))
	for _, n := range p.Evidence.Nodes {
		if !n.Reachable {
			fmt.Fprintf(out, "  %-8s UNREACHABLE: %s\n", n.Node, n.Error)
			continue
		}
		var facts []string
		if n.Cluster != nil && n.Cluster.Error == "" {
			facts = append(facts, fmt.Sprintf("Pacemaker promoted %v", n.Cluster.Promoted))
		}
		if n.HasVIP != nil {
			facts = append(facts, fmt.Sprintf("VIP here: %t", *n.HasVIP))
		}
		if n.MySQL != nil && n.MySQL.Running {
			facts = append(facts, fmt.Sprintf("MariaDB binlog %s:%d", n.MySQL.File, n.MySQL.Position))
		}
		fmt.Fprintf(out, "  %-8s %s %s %s, %d KiB changed, gi %s; %s\n", n.Node, n.State.Connection, n.State.Role, n.State.Disk,
			n.State.OutOfSyncKiB, n.GI.Raw, strings.Join(facts, ", "))
	}
	d := p.Decision
	if p.Refusal != "" {
		fmt.Fprintf(out, "decision: REFUSED (policy %s): %s\nnothing will be changed\n", d.Policy.Name, p.Refusal)
		return
	}
	fmt.Fprintf(out, "decision: %s (policy %s)", d.Action, d.Policy.Name)
	if d.Victim != "" {
		fmt.Fprintf(out, ": victim %s, survivor %s", d.Victim, d.Survivor)
	}
	fmt.Fprintf(out, "\n  %s\n", d.Reason)
	for _, c := range d.Conflicts {
		fmt.Fprintf(out, "  conflict: %s\n", c)
	}
	if d.Advice != "" {
		fmt.Fprintf(out, "  %s\n", d.Advice)
	}
	if d.Action == splitbrain.ActionResolve {
		for _, n := range p.Evidence.Nodes {
			if n.Node == d.Victim {
				kind, path := splitbrain.PreservePath(n.Backing, env.cfg.DRBD.SplitBrain.PreserveDir, p.Resource, p.ID)
				fmt.Fprintf(out, "preserve: %s of %s on %s at %s\n", kind, n.Backing.Device, n.Node, path)
			}
		}
	}
	if len(p.Steps) > 0 {
		fmt.Fprintf(out, "actor: %s runs this (haconf splitbrain resolve, or its watchdog)\ncommands:\n", p.Actor)
		for _, s := range p.Steps {
			fmt.Fprintf(out, "  %s\n", s)
		}
	}
}

func newSplitBrainResolveCmd(g *globals) *cobra.Command {
	o := &splitBrainOptions{}
	cmd := &cobra.Command{
		Use:   "resolve",
		Short: "Resolve a split brain: preserve the victim's data, discard it, resync, record the incident",
		Long: `Runs on the survivor (the node the decision keeps). It unmanages the DRBD clone,
asks the victim's watchdog to demote, preserve (LVM snapshot or verified copy)
and reconnect with --discard-my-data, reconnects the survivor, waits for
UpToDate/UpToDate, re-manages and cleans up. The victim verifies the decision
from its own evidence before it discards anything. Needs --yes, or a
confirmation typed on a terminal.`,
		Example: `  haconf splitbrain resolve --dry-run
  haconf splitbrain resolve --yes
  haconf splitbrain resolve --policy prefer --prefer ctl1 --yes`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			env, plan, err := o.plan(ctx, g)
			if plan == nil {
				return err
			}
			printSplitBrainPlan(cmd.OutOrStdout(), plan, env)
			if err != nil {
				return err
			}
			if o.dryRun || plan.Decision.Action == splitbrain.ActionReport {
				if o.dryRun {
					fmt.Fprintln(cmd.OutOrStdout(), "dry run: nothing changed")
					return nil
				}
			} else if plan.Actor != env.local.Name {
				return fmt.Errorf("%w: run this on %s (victim %s), or let the watchdogs do it", splitbrain.ErrNotSurvivor, plan.Actor, dashIfEmpty(plan.Decision.Victim))
			} else if !o.yes {
				if err := confirmVictim(cmd, plan); err != nil {
					return err
				}
			}
			inc, err := env.engine.Resolve(ctx, plan.Resource, splitbrain.ResolveOptions{Expect: &plan.Decision})
			if inc != nil {
				fmt.Fprintf(cmd.OutOrStdout(), "incident %s: %s\n", inc.ID, inc.Result)
				if inc.Preserved != nil {
					fmt.Fprintf(cmd.OutOrStdout(), "victim %s's data preserved at %s:%s (%s)\n", inc.Victim, inc.Preserved.Node, inc.Preserved.Path, inc.Preserved.Kind)
				}
			}
			return err
		},
	}
	addSplitBrainFlags(cmd, o)
	addPolicyFlags(cmd, o)
	cmd.Flags().BoolVar(&o.dryRun, "dry-run", false, "show the plan and change nothing")
	cmd.Flags().BoolVar(&o.yes, "yes", false, "do not ask for confirmation")
	return cmd
}

// confirm asks on a terminal for the victim's name; without a terminal
// it refuses (use --yes).
func confirmVictim(cmd *cobra.Command, p *splitbrain.Plan) error {
	f, ok := cmd.InOrStdin().(*os.File)
	if !ok {
		return cli.UsageError(errors.New("refusing without confirmation: pass --yes"))
	}
	if st, err := f.Stat(); err != nil || st.Mode()&os.ModeCharDevice == 0 {
		return cli.UsageError(errors.New("refusing without confirmation: stdin is not a terminal, pass --yes"))
	}
	want := p.Decision.Victim
	if want == "" {
		want = "yes"
	}
	fmt.Fprintf(cmd.OutOrStdout(), "Type %q to go ahead: ", want)
	line, _ := bufio.NewReader(f).ReadString('\n')
	if strings.TrimSpace(line) != want {
		return errors.New("not confirmed: nothing changed")
	}
	return nil
}

func newSplitBrainNotifyCmd(g *globals) *cobra.Command {
	o := &splitBrainOptions{}
	cmd := &cobra.Command{
		Use:   "notify",
		Short: "Record a split brain (DRBD's split-brain handler runs this)",
		Long: `DRBD runs this from the resource's handlers { split-brain "haconf splitbrain notify"; }
with DRBD_RESOURCE, DRBD_MINOR and more in the environment. It records a
"detected" incident in split_brain.incident_dir, which the engine reads as
evidence and the watchdog reacts to. It changes nothing else.`,
		Example: `  DRBD_RESOURCE=r0 DRBD_MINOR=0 haconf splitbrain notify`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := "/var/lib/haconf/incidents"
			if cfg, err := g.loadConfig(); err == nil {
				dir = cfg.DRBD.SplitBrain.IncidentDir
			} else {
				g.logger.Warn("config not read, recording in the default incident dir", "dir", dir, "err", err)
			}
			env := map[string]string{}
			for _, kv := range os.Environ() {
				if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, "DRBD_") {
					env[k] = v
				}
			}
			store := &splitbrain.IncidentStore{Dir: dir}
			inc, path, err := store.RecordHandler(thisNode(o.node), env, time.Now())
			if err != nil {
				return err
			}
			g.logger.Warn("split brain detected", "resource", inc.Resource, "record", path)
			return nil
		},
	}
	cmd.Flags().StringVar(&o.node, "node", "", "this controller's name (default: the short hostname)")
	return cmd
}

func dashIfEmpty(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
