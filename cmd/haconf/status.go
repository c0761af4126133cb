package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/haconf/haconf/drbd"
	"github.com/haconf/haconf/internal/runner"
	"github.com/haconf/haconf/internal/status"
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
the VIP, fencing and the last backup. Each read has its own timeout; one that
fails or hangs leaves its layer "unknown".

The first line is the verdict: HEALTHY, DEGRADED: <reasons> or DOWN: <reasons>.
Exit status: 0 healthy, 1 degraded (works but not fully redundant, or not fully
known), 2 a service is down.`,
		Example: `  haconf status
  haconf status -o json | jq -r '.verdict, .reasons[]'
  haconf status --timeout 5s || echo "pair not healthy (exit $?)"`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			switch o.output {
			case "text", "json":
			default:
				return &usageError{fmt.Errorf("--output %q: must be text or json", o.output)}
			}
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			name, err := controllerName(cfg, o.node)
			if err != nil {
				return err
			}
			run := runner.Exec{Timeout: o.timeout}
			expect := status.ExpectFrom(cfg, time.Now())
			c := status.Collectors{
				Node:    name,
				Expect:  expect,
				Run:     run,
				DRBD:    &drbd.Node{Name: name, Run: run, Config: cfg.DRBD, Log: g.logger},
				MySQL:   status.MySQLProbe{Addr: status.MySQLAddr(expect.VIP, cfg.MySQL.Port), CredentialsFile: cfg.MySQL.CredentialsFile},
				Backup:  status.BackupRepo{Dir: cfg.Backup.Repository},
				Timeout: o.timeout,
				Log:     g.logger,
			}
			snap := c.Collect(cmd.Context())
			report := status.Assess(snap)
			if o.output == "json" {
				report.Facts = &snap
				if err := emitJSON(cmd.OutOrStdout(), report); err != nil {
					return err
				}
			} else if err := report.WriteText(cmd.OutOrStdout()); err != nil {
				return err
			}
			switch report.Verdict {
			case status.Down:
				return silentExit(exitDown)
			case status.Degraded:
				return silentExit(exitDegraded)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&o.output, "output", "o", "text", "output format: text or json")
	cmd.Flags().StringVar(&o.node, "node", "", "this controller's name (default: the short hostname)")
	cmd.Flags().DurationVar(&o.timeout, "timeout", status.DefaultTimeout, "how long each layer's check may take")
	return cmd
}
