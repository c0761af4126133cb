package main

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/haconf/haconf/agents"
	"github.com/haconf/haconf/internal/cli"
	"github.com/haconf/haconf/pacemaker"
)

func newOCFCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "ocf AGENT ACTION",
		Short: "Run one action of a haconf OCF resource agent (called by Pacemaker)",
		Long: `Pacemaker runs haconf's resource agents (ocf:haconf:mariadb, ocf:haconf:vip,
ocf:haconf:fs, ocf:haconf:drbd, ocf:haconf:rabbitmq) through wrappers in
/usr/lib/ocf/resource.d/haconf/ that exec haconf-agent (the same code in a
small binary that starts faster) where it is installed, this command otherwise.
Parameters come from OCF_RESKEY_* environment variables; the exit status is
the OCF code (0 ok, 7 not running, 1 failed, ...).`,
		Example: `  OCF_RESKEY_ip=10.251.0.10 OCF_RESKEY_cidr_netmask=24 haconf ocf vip monitor
  OCF_RESKEY_device=/dev/drbd0 OCF_RESKEY_directory=/srv/haconf OCF_RESKEY_fstype=ext4 haconf ocf fs monitor
  haconf ocf mariadb meta-data
  OCF_RESKEY_nodename=rabbit@ctl1 haconf ocf rabbitmq monitor`,
		Hidden: true,
		// Pacemaker reads the exit status as an OCF code: a wrong call is
		// OCF_ERR_ARGS (2) here, as from haconf-agent, not the usage code 64.
		Args: func(cmd *cobra.Command, args []string) error {
			if err := cobra.ExactArgs(2)(cmd, args); err != nil {
				return cli.WithCode(pacemaker.OCFErrArgs, err)
			}
			return nil
		},
		ValidArgs: agents.Names(),
		RunE: func(cmd *cobra.Command, args []string) error {
			if code := agents.RunOCF(cmd.Context(), args[0], args[1], os.Getenv, cmd.OutOrStdout(), cmd.ErrOrStderr()); code != 0 {
				return cli.SilentExit(code)
			}
			return nil
		},
	}
}
