package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/haconf/haconf/internal/cli"
	"github.com/haconf/haconf/internal/runner"
	"github.com/haconf/haconf/lab"
	"github.com/haconf/haconf/pacemaker"
)

// labOptions are the flags every command shares.
type labOptions struct {
	g   *globals
	dir string
}

// lab is the lab in --dir. This binary is the haconf-lab that lab up
// installs into the lab (the nodes' exec and fence agents, the fence
// daemon); haconf, and haconf-agent when built, are taken from beside it,
// where make build puts all three.
func (o *labOptions) lab() (*lab.Lab, error) {
	dir, err := filepath.Abs(o.dir)
	if err != nil {
		return nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	return &lab.Lab{Dir: dir, Run: runner.Exec{}, Log: o.g.logger, LabBinary: self, Binary: filepath.Join(filepath.Dir(self), "haconf")}, nil
}

// labToBoot is lab for the commands that install the binaries (up, demo):
// haconf must be beside haconf-lab.
func (o *labOptions) labToBoot() (*lab.Lab, error) {
	l, err := o.lab()
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(l.Binary); err != nil {
		return nil, fmt.Errorf("the nodes run haconf, which must be beside haconf-lab (make build builds both): %w", err)
	}
	return l, nil
}

func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	g := &globals{}
	o := &labOptions{g: g}
	cmd := &cobra.Command{
		Use:   "haconf-lab",
		Short: "Run a real two-controller cluster (ctl1, ctl2) on this machine",
		Long: `haconf-lab builds two User-Mode Linux controllers, ctl1 and ctl2, on this
machine: each its own kernel (with DRBD 8.4), its own writable root (an overlay
over a read-only view of the host's /), its own LVM disk, and two networks
(management and storage bridges) plus a control link for exec and fencing.
The nodes run the haconf (and haconf-agent) found beside haconf-lab.

Everything lives in --dir (default ` + lab.DefaultDir + `): disk images, boot
scripts, the lab token (mode 0600), console logs. Needs root.

Addresses (only on bridges and taps the lab creates):
  management  10.251.0.0/24  bridge hclab-mgmt, host .1, ctl1 .11, ctl2 .12, VIP .10
  storage     10.251.1.0/24  bridge hclab-stor, host .1, ctl1 .11, ctl2 .12
  control     10.251.2.1 (host) <-> 10.251.2.11 (ctl1), 10.251.2.12 (ctl2), point to point`,
		Example: `  haconf-lab up
  haconf-lab exec ctl1 -- cat /proc/drbd
  haconf-lab partition ctl2 --link storage
  haconf-lab heal
  haconf-lab down`,
		PersistentPreRun: func(cmd *cobra.Command, args []string) {
			g.logger = cli.NewLogger(cmd.ErrOrStderr(), g.verbose)
		},
	}
	cmd.SetOut(stdout)
	cmd.SetErr(stderr)
	cmd.PersistentFlags().StringVar(&o.dir, "dir", lab.DefaultDir, "lab directory (disks, scripts, token, logs); not under /tmp, /run, /dev, /proc or /sys")
	cmd.PersistentFlags().BoolVarP(&g.verbose, "verbose", "v", false, "log debug messages")
	cmd.AddCommand(
		newLabUpCmd(o), newLabDownCmd(o), newLabStatusCmd(o), newLabExecCmd(o),
		newLabCrashCmd(o), newLabStartCmd(o), newLabPartitionCmd(o), newLabHealCmd(o),
		newLabConfigCmd(), newLabBootstrapCmd(o), newLabFailoverCmd(o), newLabDemoCmd(o), newLabFencedCmd(o), newLabAgentCmd(g), newLabFenceAgentCmd(),
		newComputeCmd(g),
	)
	cli.Setup(cmd)
	return cmd
}

func newLabUpCmd(o *labOptions) *cobra.Command {
	var memory string
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Install what is missing, build ctl1 and ctl2, boot them and wait until they answer",
		Long: `Installs the Debian packages the lab needs (when missing), creates the
disks, bridges and taps, starts the fence daemon and boots both nodes, then
waits until both answer. What already exists is left as it is, so running it
again is harmless (a stopped node is booted again).`,
		Example: `  haconf-lab up
  haconf-lab up --dir /srv/lab --memory 512M`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := o.labToBoot()
			if err != nil {
				return err
			}
			l.Memory = memory
			start := time.Now()
			if err := l.Up(cmd.Context()); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "lab up in %s: ctl1 and ctl2 answer (dir %s)\n", time.Since(start).Round(100*time.Millisecond), l.Dir)
			return nil
		},
	}
	cmd.Flags().StringVar(&memory, "memory", "", "RAM per node (UML mem=), default "+lab.DefaultMemory+" or what the last up chose")
	return cmd
}

func newLabDownCmd(o *labOptions) *cobra.Command {
	var purge bool
	cmd := o.action(&cobra.Command{
		Use:   "down",
		Short: "Stop the nodes and the fence daemon, delete the lab's interfaces",
		Long: `Stops every process the lab started (by the pids it recorded), deletes its
taps and bridges and checks that nothing is mounted under the lab directory.
The disks stay for the next up unless --purge.`,
		Example: `  haconf-lab down
  haconf-lab down --purge`,
		Args: cobra.NoArgs,
	}, func(ctx context.Context, l *lab.Lab, _ []string) (string, error) {
		return "lab down", l.Down(ctx, purge)
	})
	cmd.Flags().BoolVar(&purge, "purge", false, "also delete the lab directory (disks, token, logs)")
	return cmd
}

func newLabStatusCmd(o *labOptions) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the nodes, links and fence daemon",
		Example: `  haconf-lab status
  haconf-lab status -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := o.lab()
			if err != nil {
				return err
			}
			st, err := l.Status(cmd.Context())
			if err != nil {
				return err
			}
			if err := cli.Output(cmd.OutOrStdout(), output, "haconf-lab.status/v1", st, printLabStatus); err != nil {
				return err
			}
			if !st.Up {
				return cli.SilentExit(cli.ExitDown)
			}
			return nil
		},
	}
	cli.OutputFlag(cmd, &output, "text", "json")
	return cmd
}

func printLabStatus(w io.Writer, st lab.Status) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tPOWER\tPID\tAGENT\tMGMT\tSTORAGE\tCONTROL")
	for _, n := range st.Nodes {
		power, agent := "off", "-"
		if n.Running {
			power, agent = "on", "no answer"
			if n.Answering {
				agent = "answers"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s (%s)\t%s (%s)\t%s\n", n.Name, power, n.PID, agent,
			n.Mgmt, n.Links["mgmt"], n.Storage, n.Links["storage"], n.Control)
	}
	tw.Flush()
	fenced := "not running"
	if st.Fenced.Running {
		fenced = fmt.Sprintf("running (pid %d) at %s", st.Fenced.PID, st.Fenced.URL)
	}
	fmt.Fprintf(w, "fence daemon: %s\n", fenced)
	for _, b := range st.Bridges {
		state := "missing"
		if b.Exists {
			state = "down"
			if b.Up {
				state = "up"
			}
		}
		fmt.Fprintf(w, "bridge %s: %s\n", b.Name, state)
	}
	fmt.Fprintf(w, "dir: %s\n", st.Dir)
}

func newLabExecCmd(o *labOptions) *cobra.Command {
	var (
		timeout time.Duration
		stdin   bool
	)
	cmd := &cobra.Command{
		Use:   "exec NODE -- CMD [ARGS...]",
		Short: "Run a command in a node; print its output and exit with its status",
		Long: `Runs CMD in NODE through the node's agent (over the control link, which
partitions never cut) and prints its stdout and stderr. The exit status is the
command's. With --stdin, this command's standard input is passed to it.`,
		Example: `  haconf-lab exec ctl1 -- cat /proc/drbd
  haconf-lab exec ctl2 -- ip -br addr
  haconf-lab exec --stdin ctl1 -- sh -c 'cat > /etc/drbd.d/r0.res' < r0.res`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.ArgsLenAtDash() != 1 {
				return cli.Usagef("usage: haconf-lab exec NODE -- CMD [ARGS...]")
			}
			l, err := o.lab()
			if err != nil {
				return err
			}
			c, err := l.Client()
			if err != nil {
				return err
			}
			req := lab.ExecRequest{Argv: args[1:], Timeout: timeout.String()}
			if stdin {
				if req.Stdin, err = io.ReadAll(cmd.InOrStdin()); err != nil {
					return err
				}
			}
			res, err := c.Exec(cmd.Context(), args[0], req)
			if err != nil {
				return err
			}
			cmd.OutOrStdout().Write(res.Stdout)
			cmd.ErrOrStderr().Write(res.Stderr)
			switch {
			case res.ExitCode < 0:
				return fmt.Errorf("%s: %s: %s", args[0], strings.Join(args[1:], " "), res.Error)
			case res.ExitCode > 0:
				return cli.SilentExit(res.ExitCode)
			}
			return nil
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", 15*time.Minute, "kill the command after this long (a bootstrap in a lab node takes minutes)")
	cmd.Flags().BoolVar(&stdin, "stdin", false, "pass standard input to the command")
	return cmd
}

func newLabCrashCmd(o *labOptions) *cobra.Command {
	return o.action(&cobra.Command{
		Use:     "crash NODE",
		Short:   "Power a node off at once (SIGKILL to its UML process group)",
		Example: "  haconf-lab crash ctl1",
		Args:    cobra.ExactArgs(1),
	}, func(ctx context.Context, l *lab.Lab, args []string) (string, error) {
		return args[0] + " is off", l.Crash(ctx, args[0])
	})
}

func newLabStartCmd(o *labOptions) *cobra.Command {
	return o.action(&cobra.Command{
		Use:     "start NODE",
		Short:   "Boot a stopped or crashed node with its disks as they were",
		Example: "  haconf-lab start ctl1",
		Args:    cobra.ExactArgs(1),
	}, func(ctx context.Context, l *lab.Lab, args []string) (string, error) {
		return args[0] + " answers", l.Start(ctx, args[0])
	})
}

func newLabPartitionCmd(o *labOptions) *cobra.Command {
	var link string
	cmd := o.action(&cobra.Command{
		Use:   "partition NODE --link mgmt|storage|all",
		Short: "Cut a node's management or storage link (or both)",
		Long: `Takes the node's tap off the bridge: the node keeps its addresses but no
frame reaches the other node. The control link (exec, fencing) stays up.
Undo with haconf-lab heal.`,
		Example: `  haconf-lab partition ctl2 --link storage
  haconf-lab partition ctl1 --link all`,
		Args: cobra.ExactArgs(1),
	}, func(ctx context.Context, l *lab.Lab, args []string) (string, error) {
		return args[0] + ": " + link + " cut", l.Partition(ctx, args[0], lab.Link(link))
	})
	cmd.Flags().StringVar(&link, "link", "all", "mgmt, storage or all")
	return cmd
}

func newLabHealCmd(o *labOptions) *cobra.Command {
	return o.action(&cobra.Command{
		Use:     "heal",
		Short:   "Reconnect every cut link",
		Example: "  haconf-lab heal",
		Args:    cobra.NoArgs,
	}, func(ctx context.Context, l *lab.Lab, _ []string) (string, error) {
		return "all links connected", l.Heal(ctx)
	})
}

// action makes cmd run act on the lab and print the line it returns when
// act succeeds.
func (o *labOptions) action(cmd *cobra.Command, act func(ctx context.Context, l *lab.Lab, args []string) (string, error)) *cobra.Command {
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		l, err := o.lab()
		if err != nil {
			return err
		}
		done, err := act(cmd.Context(), l, args)
		if err != nil {
			return err
		}
		fmt.Fprintln(cmd.OutOrStdout(), done)
		return nil
	}
	return cmd
}

func newLabConfigCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "config",
		Short: "Print the haconf.yaml that describes the lab cluster",
		Example: `  haconf-lab config > lab.yaml
  haconf config validate -c lab.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			_, err := cmd.OutOrStdout().Write(lab.Config())
			return err
		},
	}
}

func newLabFencedCmd(o *labOptions) *cobra.Command {
	return &cobra.Command{
		Use:    "fenced",
		Short:  "Run the lab's fence daemon on the host (lab up starts it)",
		Hidden: true,
		Example: `  haconf-lab fenced --dir /var/lib/haconf-lab
  curl -H "Authorization: Bearer $(cat /var/lib/haconf-lab/token)" http://10.251.2.1:7410/v1/nodes/ctl2`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := o.lab()
			if err != nil {
				return err
			}
			token, err := l.Token()
			if err != nil {
				return err
			}
			f := &lab.Fenced{Lab: l, Token: token, Log: o.g.logger}
			return f.Serve(cmd.Context(), fmt.Sprintf("%s:%d", lab.HostControl, lab.FencedPort))
		},
	}
}

func newLabAgentCmd(g *globals) *cobra.Command {
	var node, listen, tokenFile string
	cmd := &cobra.Command{
		Use:     "agent",
		Short:   "Run the exec agent inside a lab node (the node's init starts it)",
		Hidden:  true,
		Example: "  haconf-lab agent --node ctl1 --listen 10.251.2.11:7411 --token-file /etc/haconf/lab-token",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			token, err := lab.ReadTokenFile(tokenFile)
			if err != nil {
				return err
			}
			a := &lab.Agent{Node: node, Token: token, Log: g.logger}
			return a.Serve(cmd.Context(), listen)
		},
	}
	cmd.Flags().StringVar(&node, "node", "", "this node's name")
	cmd.Flags().StringVar(&listen, "listen", "", "address:port on the control link")
	cmd.Flags().StringVar(&tokenFile, "token-file", lab.DefaultTokenFile, "file holding the lab token")
	_ = cmd.MarkFlagRequired("node")
	_ = cmd.MarkFlagRequired("listen")
	return cmd
}

func newLabFenceAgentCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "fence-agent [-o ACTION] [-n NODE] [--url URL] [--token-file FILE]",
		Short: "The fence_haconf_lab fence agent (fence-agents protocol; key=value on stdin without options)",
		Long: `Runs as /usr/sbin/fence_haconf_lab in the lab nodes. Actions: off, on,
reboot, status (exit 2 when off), list, list-status, monitor, metadata,
validate-all. Without options it reads key=value lines (action=, port= or
plug=, url=, token_file=) from stdin, as Pacemaker's fencer does.`,
		Hidden: true,
		Example: `  fence_haconf_lab -o status -n ctl2
  printf 'action=reboot\nport=ctl2\n' | fence_haconf_lab
  fence_haconf_lab -o metadata`,
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := lab.ParseFenceArgs(args, cmd.InOrStdin())
			if err != nil {
				return cli.UsageError(err)
			}
			if code := lab.FenceAgent(cmd.Context(), r, cmd.OutOrStdout(), cmd.ErrOrStderr()); code != 0 {
				return cli.SilentExit(code)
			}
			return nil
		},
	}
}

func newLabBootstrapCmd(o *labOptions) *cobra.Command {
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "bootstrap",
		Short: "Run haconf bootstrap on both lab nodes, the way the playbook would",
		Long: `Places the lab's haconf.yaml and a secrets file (generated once, mode 0600 in
the lab directory) in both nodes, runs haconf bootstrap in both at the same
time, then creates the MariaDB user lab (password lab), reachable through the
VIP 10.251.0.10 from the host. Running it again changes nothing.`,
		Example: `  haconf-lab up && haconf-lab bootstrap
  haconf-lab bootstrap --dry-run`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := o.lab()
			if err != nil {
				return err
			}
			var extra []string
			if dryRun {
				extra = append(extra, "--dry-run")
			}
			results, err := l.Bootstrap(cmd.Context(), extra...)
			for _, r := range results {
				fmt.Fprintf(cmd.OutOrStdout(), "== %s (exit %d, %s)\n%s", r.Node, r.ExitCode, r.Took.Round(time.Second), r.Output)
			}
			return err
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "show each node's bootstrap plan and change nothing")
	return cmd
}

func newLabFailoverCmd(o *labOptions) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "failover",
		Short: "Crash the active lab node while writing through the VIP, and measure the takeover",
		Long: `Writes rows to MariaDB through the VIP (user lab) in a loop, crashes the node
running the services (instant power-off), and measures until a write succeeds
again, with the time each phase appeared on the survivor (detection, fencing,
DRBD promotion, mount, MariaDB, VIP). Checks that every acknowledged row is on
the survivor. Needs a bootstrapped lab; start the crashed node again with
haconf-lab start NODE (it rejoins as the standby).`,
		Example: `  haconf-lab failover
  haconf-lab failover -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := o.lab()
			if err != nil {
				return err
			}
			r, err := l.Failover(cmd.Context())
			if output == "json" {
				if jerr := cli.WriteJSON(cmd.OutOrStdout(), "haconf-lab.failover/v1", r); jerr != nil {
					return errors.Join(err, jerr)
				}
			} else {
				fmt.Fprint(cmd.OutOrStdout(), r.String())
			}
			return err
		},
	}
	cli.OutputFlag(cmd, &output, "text", "json")
	return cmd
}

func newLabDemoCmd(o *labOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "demo",
		Short: "The demo: bring up the lab pair, bootstrap it, show status, fail over, show status again",
		Long: `Runs, in order: lab up (two User-Mode Linux controllers), lab bootstrap (haconf
bootstrap on both), haconf status, lab failover (crash the active node while
writing through the VIP; prints the measured failover time and phases), lab
start of the crashed node (it rejoins as the standby), and haconf status again.
Leaves the lab running: haconf-lab down stops it.`,
		Example: "  sudo make demo        # same as: haconf-lab demo",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			w := cmd.OutOrStdout()
			ctx := cmd.Context()
			l, err := o.labToBoot()
			if err != nil {
				return err
			}
			step := func(s string) { fmt.Fprintf(w, "\n=== %s\n", s) }
			status := func() {
				n, err := l.ActiveNode(ctx)
				if err != nil {
					n = "ctl1"
				}
				r, err := l.Exec(ctx, n, "/usr/local/sbin/haconf", "status", "-c", lab.NodeConfigPath, "--timeout", "60s")
				if err == nil && r.ExitCode != 127 {
					w.Write(r.Stdout)
					w.Write(r.Stderr)
					return
				}
				// No haconf status: Pacemaker's own view, read in the node.
				c, err := l.Client()
				if err != nil {
					fmt.Fprintln(w, err)
					return
				}
				out, err := pacemaker.Cluster{Run: c.Runner(n)}.StatusText(ctx)
				w.Write(out)
				if err != nil {
					fmt.Fprintln(w, err)
				}
			}
			step("haconf-lab up: two controllers, ctl1 and ctl2, on this machine")
			start := time.Now()
			if err := l.Up(ctx); err != nil {
				return err
			}
			fmt.Fprintf(w, "both nodes answer (%s)\n", time.Since(start).Round(time.Second))
			step("haconf-lab bootstrap: haconf bootstrap on both nodes, as the playbook would")
			start = time.Now()
			results, err := l.Bootstrap(ctx)
			for _, r := range results {
				fmt.Fprintf(w, "-- %s (exit %d, %s)\n%s", r.Node, r.ExitCode, r.Took.Round(time.Second), r.Output)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(w, "pair bootstrapped in %s\n", time.Since(start).Round(time.Second))
			step("haconf status")
			status()
			step("haconf-lab failover: crash the active node while writing through the VIP")
			fr, err := l.Failover(ctx)
			fmt.Fprint(w, fr.String())
			if err != nil {
				return err
			}
			step("haconf-lab start " + fr.Crashed + ": it boots and rejoins as the standby")
			if err := l.Start(ctx, fr.Crashed); err != nil {
				return err
			}
			if err := l.WaitRejoined(ctx, fr.Crashed, 3*time.Minute); err != nil {
				return err
			}
			step("haconf status")
			status()
			fmt.Fprintf(w, "\nFailover: %.1fs from the crash of %s until a write through the VIP succeeded on %s; %d of %d acknowledged rows kept",
				fr.Failover.Seconds(), fr.Crashed, fr.Survivor, fr.Found, fr.Committed)
			if m := fr.Messages; m != nil {
				fmt.Fprintf(w, "; %d of %d confirmed messages kept", m.Confirmed-m.Missing, m.Confirmed)
			}
			fmt.Fprintf(w, ".\nThe lab keeps running; stop it with: haconf-lab down\n")
			return nil
		},
	}
}
