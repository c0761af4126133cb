package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/haconf/haconf/internal/cli"
	"github.com/haconf/haconf/internal/runner"
	"github.com/haconf/haconf/lab"
	"github.com/haconf/haconf/lab/cloud"
)

// computeOptions are the flags every compute command shares.
type computeOptions struct {
	g   *globals
	dir string
}

func (o *computeOptions) cloud() (*cloud.Cloud, error) {
	dir, err := filepath.Abs(o.dir)
	if err != nil {
		return nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	return &cloud.Cloud{Dir: dir, Run: runner.Exec{}, Log: o.g.logger, LabBinary: self, HaconfBinary: haconfBinary(self)}, nil
}

// haconfBinary is the haconf beside this haconf-lab (make build puts both
// in bin/), else the one on PATH, else "".
func haconfBinary(self string) string {
	beside := filepath.Join(filepath.Dir(self), "haconf")
	if fi, err := os.Stat(beside); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
		return beside
	}
	p, _ := exec.LookPath("haconf")
	return p
}

func newComputeCmd(g *globals) *cobra.Command {
	o := &computeOptions{g: g}
	cmd := &cobra.Command{
		Use:   "compute",
		Short: "Run a real Nova control plane with fake compute hosts (cmp1, cmp2, ...) on this machine",
		Long: `The compute lab: Debian 12's OpenStack services (Keystone, Placement, nova-api,
nova-conductor, nova-scheduler, optionally Masakari) with their own MariaDB and
RabbitMQ, run as plain processes, plus fake compute hosts: each a network
namespace with a management and a storage link on the controller lab's
bridges, running nova-compute with Nova's fake driver. Faults are real: crash
kills every process of a host and takes its links down.

Everything lives in --dir (default ` + cloud.DefaultDir + `, mode 0700): the warm
state (databases, keys, passwords), configuration, logs. Needs root, and the
packages make deps installs.

Addresses (only on bridges and namespaces the labs create):
  control plane  10.251.0.1 (the lab host on bridge hclab-mgmt): keystone :5000,
                 nova :8774, placement :8778, glance :9292, neutron :9696
  cmpN           10.251.0.(100+N) management (eth0), 10.251.1.(100+N) storage (eth1)`,
		Example: `  haconf-lab compute up --hosts 3
  source <(haconf-lab compute env)
  openstack server create --flavor ` + cloud.FlavorName + ` --image ` + cloud.ImageName + ` --nic none vm1
  haconf-lab compute crash cmp1
  haconf-lab compute down`,
	}
	cmd.PersistentFlags().StringVar(&o.dir, "dir", cloud.DefaultDir, "compute lab directory (state, configuration, secrets, logs)")
	cmd.AddCommand(newComputeUpCmd(o), newComputeDownCmd(o), newComputeStatusCmd(o), newComputeEnvCmd(o),
		newComputeCrashCmd(o), newComputeStartCmd(o), newComputePartitionCmd(o), newComputeHealCmd(o),
		newComputeExecCmd(o), newComputeFenceCmd(o), newComputeStubsCmd(o))
	return cmd
}

func newComputeUpCmd(o *computeOptions) *cobra.Command {
	var up cloud.UpOptions
	var noHA bool
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Start the control plane and the compute hosts, and wait until Nova sees every host",
		Long: `Starts what does not run yet and waits until every host's nova-compute is up
in Nova and known to placement. The first up makes the databases (about 90 s on
2 cores); later ones reuse them (about 40 s). Hosts beyond --hosts from an
earlier up are removed. The admin's credentials: haconf-lab compute env.

Unless --no-ha, haconf's compute failover runs too: haconf compute agent on
every host and haconf compute controller on this machine (configuration in
DIR/etc/haconf/haconf.yaml, with this lab's fence agent for every host), so
"haconf-lab compute crash cmp1" moves cmp1's servers within seconds. Watch it:
  haconf compute status -c DIR/etc/haconf/haconf.yaml`,
		Example: `  haconf-lab compute up
  haconf-lab compute up --hosts 3 --masakari --no-ha`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.cloud()
			if err != nil {
				return err
			}
			start := time.Now()
			up.HA = !noHA
			if err := c.Up(cmd.Context(), up); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "compute lab up in %s (dir %s); source <(haconf-lab compute env) for the openstack CLI\n",
				time.Since(start).Round(100*time.Millisecond), c.Dir)
			return nil
		},
	}
	cmd.Flags().IntVar(&up.Hosts, "hosts", cloud.DefaultHosts, fmt.Sprintf("compute hosts, cmp1 to cmpN (1 to %d)", cloud.MaxHosts))
	cmd.Flags().BoolVar(&up.Masakari, "masakari", false, "also run masakari-api and masakari-engine (instance HA, to compare)")
	cmd.Flags().BoolVar(&noHA, "no-ha", false, "do not run haconf's compute agents and controller")
	return cmd
}

func newComputeDownCmd(o *computeOptions) *cobra.Command {
	var purge bool
	cmd := o.action(&cobra.Command{
		Use:   "down",
		Short: "Stop every process of the compute lab and delete its namespaces (and bridges no one else uses)",
		Long: `Stops the hosts and the control plane, deletes the hosts' namespaces and the
lab bridges unless the controller lab still uses them, and checks that no
process is left. The warm state stays for the next up unless --purge.`,
		Example: `  haconf-lab compute down
  haconf-lab compute down --purge`,
		Args: cobra.NoArgs,
	}, func(ctx context.Context, c *cloud.Cloud, _ []string) (string, error) {
		return "compute lab down", c.Down(ctx, purge)
	})
	cmd.Flags().BoolVar(&purge, "purge", false, "also delete the lab directory (the next up is cold)")
	return cmd
}

func newComputeStatusCmd(o *computeOptions) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the control plane's processes and each host's power, links and Nova service",
		Long: `Exit status: 0 everything up, 1 up but a host is off, cut off or down in Nova,
2 the control plane is not (completely) up.`,
		Example: `  haconf-lab compute status
  haconf-lab compute status -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.cloud()
			if err != nil {
				return err
			}
			st, err := c.Status(cmd.Context())
			if errors.Is(err, cloud.ErrNotUp) {
				if output == "json" {
					cli.WriteJSON(cmd.OutOrStdout(), "haconf-lab.compute.status/v1", st)
				} else {
					fmt.Fprintf(cmd.OutOrStdout(), "compute lab not up (dir %s)\n", c.Dir)
				}
				return cli.SilentExit(cli.ExitDown)
			}
			if err != nil {
				return err
			}
			if err := cli.Output(cmd.OutOrStdout(), output, "haconf-lab.compute.status/v1", st, printComputeStatus); err != nil {
				return err
			}
			switch {
			case !st.Up:
				return cli.SilentExit(cli.ExitDown)
			case st.Degraded:
				return cli.SilentExit(cli.ExitDegraded)
			}
			return nil
		},
	}
	cli.OutputFlag(cmd, &output, "text", "json")
	return cmd
}

func printComputeStatus(w io.Writer, st cloud.Status) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tPOWER\tMGMT\tSTORAGE\tNOVA-COMPUTE\tNOVA")
	for _, h := range st.Hosts {
		proc := "stopped"
		if h.NovaCompute {
			proc = "running"
		}
		nova := "?"
		if h.NovaState != "" {
			nova = h.NovaState + ", " + h.NovaStatus
			if h.ForcedDown {
				nova += ", forced down"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s (%s)\t%s (%s)\t%s\t%s\n", h.Name, h.Power, h.MgmtAddr, h.MgmtLink, h.StorageAddr, h.StorageLink, proc, nova)
	}
	tw.Flush()
	var down []string
	for _, s := range st.Services {
		if !s.Running {
			down = append(down, s.Name)
		}
	}
	if len(down) == 0 {
		fmt.Fprintf(w, "control plane: %d services running\n", len(st.Services))
	} else {
		fmt.Fprintf(w, "control plane: not running: %s\n", strings.Join(down, ", "))
	}
	if st.NovaError != "" {
		fmt.Fprintf(w, "compute API: %s\n", st.NovaError)
	}
	fmt.Fprintf(w, "dir: %s\n", st.Dir)
}

func newComputeEnvCmd(o *computeOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "env",
		Short: "Print the export lines of the lab cloud's admin credentials (OS_AUTH_URL, OS_PASSWORD, ...)",
		Long: `Prints the cloud admin's credentials as shell export lines, for the openstack
CLI, gophercloud (AuthOptionsFromEnv) and scripts. They hold the admin
password: source them, do not store them.`,
		Example: `  source <(haconf-lab compute env)
  openstack compute service list`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.cloud()
			if err != nil {
				return err
			}
			s, err := c.Secrets()
			if err != nil {
				return err
			}
			project, err := c.AdminProject()
			if err != nil {
				return err
			}
			for _, kv := range cloud.Env(s, project) {
				fmt.Fprintf(cmd.OutOrStdout(), "export %s=%s\n", kv[0], shellQuote(kv[1]))
			}
			return nil
		},
	}
}

// shellQuote quotes s for sh when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func newComputeCrashCmd(o *computeOptions) *cobra.Command {
	return o.action(&cobra.Command{
		Use:   "crash HOST",
		Short: "Power a host off at once: SIGKILL to all its processes, both links down",
		Example: `  haconf-lab compute crash cmp1
  haconf-lab compute start cmp1`,
		Args: cobra.ExactArgs(1),
	}, func(ctx context.Context, c *cloud.Cloud, args []string) (string, error) {
		return args[0] + " is off", c.Crash(ctx, args[0])
	})
}

func newComputeStartCmd(o *computeOptions) *cobra.Command {
	return o.action(&cobra.Command{
		Use:     "start HOST",
		Short:   "Boot a crashed host: links up, nova-compute started as after a reboot",
		Example: "  haconf-lab compute start cmp1",
		Args:    cobra.ExactArgs(1),
	}, func(ctx context.Context, c *cloud.Cloud, args []string) (string, error) {
		return args[0] + " is on (nova-compute reports within 10 s)", c.Start(ctx, args[0])
	})
}

func newComputePartitionCmd(o *computeOptions) *cobra.Command {
	var link string
	cmd := o.action(&cobra.Command{
		Use:   "partition HOST --link mgmt|storage|all",
		Short: "Take a host's management or storage link (or both) down; its processes keep running",
		Long: `Takes the link down on the lab side: the host keeps its address, but its end
loses its carrier and no frame passes. Undo with haconf-lab compute heal.`,
		Example: `  haconf-lab compute partition cmp2 --link mgmt
  haconf-lab compute heal cmp2`,
		Args: cobra.ExactArgs(1),
	}, func(ctx context.Context, c *cloud.Cloud, args []string) (string, error) {
		return args[0] + ": " + link + " link down", c.Partition(ctx, args[0], lab.Link(link))
	})
	cli.StringEnumFlag(cmd, &link, "link", "", "all", []string{"mgmt", "storage", "all"}, "which link")
	return cmd
}

func newComputeHealCmd(o *computeOptions) *cobra.Command {
	return o.action(&cobra.Command{
		Use:   "heal [HOST]",
		Short: "Bring a host's links up again (every powered-on host's without HOST)",
		Example: `  haconf-lab compute heal
  haconf-lab compute heal cmp2`,
		Args: cobra.MaximumNArgs(1),
	}, func(ctx context.Context, c *cloud.Cloud, args []string) (string, error) {
		name := ""
		if len(args) == 1 {
			name = args[0]
		}
		what := "every host's links are up"
		if name != "" {
			what = name + ": links up"
		}
		return what, c.Heal(ctx, name)
	})
}

func newComputeExecCmd(o *computeOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "exec HOST -- CMD [ARGS...]",
		Short: "Run a command in a host's network namespace and exit with its status",
		Example: `  haconf-lab compute exec cmp1 -- ip -br addr
  haconf-lab compute exec cmp1 -- ping -c1 10.251.1.102`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.ArgsLenAtDash() != 1 {
				return cli.Usagef("usage: haconf-lab compute exec HOST -- CMD [ARGS...]")
			}
			c, err := o.cloud()
			if err != nil {
				return err
			}
			x, err := c.Command(cmd.Context(), args[0], args[1:])
			if err != nil {
				return err
			}
			x.Stdin, x.Stdout, x.Stderr = cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr()
			err = x.Run()
			var ee *exec.ExitError
			if errors.As(err, &ee) && ee.ExitCode() > 0 {
				return cli.SilentExit(ee.ExitCode())
			}
			return err
		},
	}
}

func newComputeFenceCmd(o *computeOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "fence [-o ACTION] [-n HOST] [--dir DIR]",
		Short: "The compute lab's fence agent (fence-agents protocol; key=value lines on stdin without options)",
		Long: `A fence agent for the compute hosts, as fence_ipmilan is for real ones: off
is a crash, on a start, reboot both. Actions: off, on, reboot, status, list,
list-status, monitor, metadata, validate-all. Without options it reads
key=value lines from stdin (action=, plug= or port=, dir=), as Pacemaker's
fencer and haconf run agents.

Exit status as fence-agents': 0 success (status: on), 1 failure or bad input
(unknown action or plug: the reason on stderr), 2 status: off.`,
		Example: `  printf 'action=off\nplug=cmp1\n' | haconf-lab compute fence
  haconf-lab compute fence -o status -n cmp1
  haconf-lab compute fence -o metadata`,
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := cloud.ParseFenceRequest(args, cmd.InOrStdin())
			if err != nil {
				fmt.Fprintln(cmd.ErrOrStderr(), err)
				return cli.SilentExit(cloud.FenceFailed)
			}
			if r.Dir == "" {
				r.Dir = o.dir
			}
			o.dir = r.Dir
			c, err := o.cloud()
			if err != nil {
				return err
			}
			if code := cloud.Fence(cmd.Context(), c, r, cmd.OutOrStdout(), cmd.ErrOrStderr()); code != cloud.FenceOK {
				return cli.SilentExit(code)
			}
			return nil
		},
	}
}

func newComputeStubsCmd(o *computeOptions) *cobra.Command {
	return &cobra.Command{
		Use:    "stubs",
		Short:  "Serve the Neutron and Glance stand-ins (compute up starts it)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return cloud.ServeStubs(cmd.Context(), o.g.logger)
		},
	}
}

// action makes cmd run act on the cloud and print the line it returns when
// act succeeds.
func (o *computeOptions) action(cmd *cobra.Command, act func(ctx context.Context, c *cloud.Cloud, args []string) (string, error)) *cobra.Command {
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := o.cloud()
		if err != nil {
			return err
		}
		done, err := act(cmd.Context(), c, args)
		if err != nil {
			return err
		}
		fmt.Fprintln(cmd.OutOrStdout(), done)
		return nil
	}
	return cmd
}
