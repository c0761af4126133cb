package main

import (
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/haconf/haconf/agents"
	"github.com/haconf/haconf/drbd"
	"github.com/haconf/haconf/internal/cli"
	"github.com/haconf/haconf/internal/runner"
)

func newDRBDCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "drbd",
		Short: "Show DRBD replication state (8.4 and 9)",
		Example: `  haconf drbd status
  haconf drbd status -o json`,
	}
	cmd.AddCommand(newDRBDStatusCmd(g), newDRBDFencePeerCmd())
	return cmd
}

// newDRBDFencePeerCmd is DRBD's fence-peer handler (see agents.FenceHandler).
// DRBD runs it with DRBD_RESOURCE and DRBD_MINOR set and reads the exit
// code; what it did goes to stderr and to agents.HandlerLog. The rendered
// handler runs haconf-agent, the same code in a smaller binary, when it is
// installed.
func newDRBDFencePeerCmd() *cobra.Command {
	var clone string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:    "fence-peer --clone CLONE",
		Short:  "DRBD fence-peer handler: keep the peer from being promoted (run by DRBD)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if code := agents.FencePeer(cmd.Context(), os.Getenv, clone, timeout, cmd.ErrOrStderr()); code != 0 {
				return cli.SilentExit(code)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&clone, "clone", "", "the promotable clone's id in the CIB")
	cmd.Flags().DurationVar(&timeout, "timeout", 90*time.Second, "how long to wait for Pacemaker to fence an unreachable peer")
	cmd.MarkFlagRequired("clone")
	return cmd
}

type drbdStatusOptions struct {
	output string
	node   string
}

func newDRBDStatusCmd(g *globals) *cobra.Command {
	o := &drbdStatusOptions{}
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Role, disk, connection, peer, out-of-sync and sync progress of every DRBD volume here",
		Long: `Reads /proc/drbd on DRBD 8.4 and drbdsetup status --json on DRBD 9. Exits 0
when every volume is Connected and UpToDate/UpToDate, 1 when one is not.`,
		Example: `  haconf drbd status
  haconf drbd status -o json | jq '.resources[0].out_of_sync_kib'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			n := &drbd.Node{Name: thisNode(o.node), Run: runner.Exec{Timeout: 15 * time.Second}, Config: cfg.DRBD}
			st, err := n.Status(cmd.Context())
			if err != nil {
				return err
			}
			if st.Resources == nil {
				st.Resources = []drbd.Resource{}
			}
			if o.output == "json" {
				if err := cli.WriteJSON(cmd.OutOrStdout(), "haconf.drbd.status/v1", st); err != nil {
					return err
				}
			} else {
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintf(tw, "DRBD %s\n", dashIfEmpty(st.Version))
				fmt.Fprintln(tw, "RESOURCE\tMINOR\tROLE\tDISK\tCONNECTION\tREPLICATION\tPEER\tPEER ROLE\tPEER DISK\tOUT OF SYNC\tSYNC")
				for _, r := range st.Resources {
					sync := "-"
					if r.Sync != nil {
						sync = fmt.Sprintf("%.1f%%", r.Sync.Percent)
						if r.Sync.ETASeconds >= 0 {
							sync += fmt.Sprintf(" eta %s", time.Duration(r.Sync.ETASeconds)*time.Second)
						}
					}
					name := r.Name
					if r.Volume > 0 {
						name = fmt.Sprintf("%s/%d", r.Name, r.Volume)
					}
					fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d KiB\t%s\n", dashIfEmpty(name), r.Minor, dashIfEmpty(r.Role), dashIfEmpty(r.Disk),
						r.Connection, dashIfEmpty(r.Replication), dashIfEmpty(r.PeerName), dashIfEmpty(r.PeerRole), dashIfEmpty(r.PeerDisk), r.OutOfSyncKiB, sync)
				}
				tw.Flush()
			}
			for _, r := range st.Resources {
				if r.Connection != drbd.ConnUnconfigured && !r.Healthy() {
					return cli.SilentExit(cli.ExitDegraded)
				}
			}
			return nil
		},
	}
	cli.OutputFlag(cmd, &o.output, "text", "json")
	cmd.Flags().StringVar(&o.node, "node", "", "this controller's name (default: the short hostname)")
	return cmd
}
