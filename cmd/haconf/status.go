package main

import (
	"time"

	"github.com/spf13/cobra"

	"github.com/haconf/haconf/backup"
	"github.com/haconf/haconf/drbd"
	"github.com/haconf/haconf/internal/cli"
	"github.com/haconf/haconf/internal/runner"
	"github.com/haconf/haconf/status"
)

type statusOptions struct {
	output  string
	node    string
	timeout time.Duration
}

func newStatusCmd(g *globals) *cobra.Command {
	o := &statusOptions{}
	cmd := &cobra.Command{
		Use:   "status",
		Short: "One view of every layer of the pair, with a verdict and the reason for anything not healthy",
		Long: `Reads, from this controller and concurrently: corosync membership and both knet
links (corosync-cfgtool -s, corosync-quorumtool -s), Pacemaker (crm_mon), DRBD,
MariaDB through the VIP (with mysql.credentials_file), RabbitMQ (rabbitmqctl),
the VIP, fencing (with each controller's fence device asked for its power state
through its fence agent, as Pacemaker's fencer does), the clock (synchronised,
by timedatectl or chronyc, and the peer's offset, by clockdiff: under 1s) and
the last backup. Each read has its own timeout; one that fails or hangs leaves
its layer "unknown".

The first line is the verdict: HEALTHY, DEGRADED: <reasons> or DOWN: <reasons>.
Exit status: 0 healthy, 1 degraded (works but not fully redundant, or not fully
known), 2 a service is down.`,
		Example: `  haconf status
  haconf status -o json | jq -r '.verdict, .reasons[]'
  haconf status --timeout 5s || echo "pair not healthy (exit $?)"`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, name, err := g.loadController(o.node)
			if err != nil {
				return err
			}
			run := runner.Exec{Timeout: o.timeout}
			expect := status.ExpectFrom(cfg, time.Now())
			peer, _ := cfg.Peer(name)
			c := status.Collectors{
				Node:     name,
				Expect:   expect,
				Run:      run,
				DRBD:     &drbd.Node{Name: name, Run: run, Config: cfg.DRBD},
				MySQL:    status.MySQLProbe{Addr: status.MySQLAddr(expect.VIP, cfg.MySQL.Port), CredentialsFile: cfg.MySQL.CredentialsFile},
				Backup:   status.BackupRepo{Dir: cfg.Backup.Repository, Copies: copyTargetNames(cfg.Backup.Copies)},
				Fence:    status.FenceProbe{Devices: cfg.Fencing.Devices(cfg.NodeNames()), Run: run},
				Peer:     peer.Name,
				PeerAddr: peer.Management,
				Timeout:  o.timeout,
				Log:      g.logger,
			}
			snap := c.Collect(cmd.Context())
			report := status.Assess(snap)
			if o.output == "json" {
				report.Facts = &snap
				if err := cli.WriteJSON(cmd.OutOrStdout(), "haconf.status/v1", report); err != nil {
					return err
				}
			} else if err := report.WriteText(cmd.OutOrStdout()); err != nil {
				return err
			}
			switch report.Verdict {
			case status.Down:
				return cli.SilentExit(cli.ExitDown)
			case status.Degraded:
				return cli.SilentExit(cli.ExitDegraded)
			}
			return nil
		},
	}
	cli.OutputFlag(cmd, &o.output, "text", "json")
	cmd.Flags().StringVar(&o.node, "node", "", "this controller's name (default: the short hostname)")
	cmd.Flags().DurationVar(&o.timeout, "timeout", 0, "how long each layer's check may take (default 10s, RabbitMQ 40s: each rabbitmqctl call starts an Erlang VM, fence devices 30s)")
	return cmd
}

// copyTargetNames are the names of the off-host copy targets.
func copyTargetNames(ts []backup.CopyTarget) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.Name)
	}
	return out
}
