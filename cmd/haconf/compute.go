package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/haconf/haconf/backup"
	"github.com/haconf/haconf/compute"
	"github.com/haconf/haconf/compute/gossip"
	"github.com/haconf/haconf/compute/nova"
	"github.com/haconf/haconf/internal/cli"
	"github.com/haconf/haconf/internal/config"
	"github.com/haconf/haconf/internal/runner"
	"github.com/haconf/haconf/internal/secretfile"
)

func newComputeCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "compute",
		Short: "Compute-node VM failover: when a compute host dies, its instances run again elsewhere",
		Long: `Every compute host runs haconf compute agent: a member of two gossip pools
(hashicorp/memberlist), one on the management network and one on the storage
network. The one controller (haconf compute controller, a Pacemaker resource on
the active controller, or a plain process without the pair) joins both and
judges each host:

  alive on both networks        healthy
  lost on one network only      a warning; its instances are never moved
  lost on both networks         failed: fence it (its fence agent must confirm
                                it off), force its nova-compute down, disable
                                it, evacuate its instances to hosts haconf
                                chooses from Placement, wait until each runs

Guards: nothing is judged until the pools settled after the controller
started; more than guards.max_failed_share of a domain's hosts, or more than
guards.max_failed_hosts in all, failing within guards.window holds every
action until haconf compute resume. Every incident and every instance's
progress is stored, so a controller started elsewhere resumes and never
evacuates an instance twice.`,
		Example: `  haconf compute status
  haconf compute plan cmp1
  haconf compute maintenance cmp3 on --ttl 2h --reason "BIOS update"
  haconf compute resume`,
	}
	cmd.AddCommand(newComputeAgentCmd(g), newComputeControllerCmd(g), newComputeStatusCmd(g), newComputeIncidentsCmd(g),
		newComputePlanCmd(g), newComputeMaintenanceCmd(g), newComputeResumeCmd(g))
	return cmd
}

// gossipKey derives the pools' key from the configured secret file.
func gossipKey(c *compute.Config) ([]byte, error) {
	secret, err := secretfile.Read(c.Gossip.KeyFile, 64<<10, 0o400)
	if err != nil {
		return nil, fmt.Errorf("gossip key (compute.gossip.key_file): %w (make one: head -c 32 /dev/urandom > FILE; chmod 400 FILE; the same file on every compute host and controller)", err)
	}
	if len(secret) < 16 {
		return nil, fmt.Errorf("gossip key: %s holds %d bytes; want at least 16 random bytes", c.Gossip.KeyFile, len(secret))
	}
	return gossip.DeriveKey(secret), nil
}

func addrPort(addr string, port int) (netip.AddrPort, error) {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return netip.AddrPort{}, err
	}
	return netip.AddrPortFrom(a, uint16(port)), nil
}

// controllerAddrs are the addresses a controller may run on: both
// controllers of the pair, or compute.controller.
func controllerAddrs(c *config.Config) map[gossip.Link][]string {
	out := map[gossip.Link][]string{}
	for _, n := range c.Nodes {
		out[gossip.Management] = append(out[gossip.Management], n.Management)
		out[gossip.Storage] = append(out[gossip.Storage], n.Storage)
	}
	if cc := c.Compute.Controller; cc.Management != "" {
		out[gossip.Management] = append(out[gossip.Management], cc.Management)
	}
	if cc := c.Compute.Controller; cc.Storage != "" {
		out[gossip.Storage] = append(out[gossip.Storage], cc.Storage)
	}
	return out
}

// seeds are the members a newcomer of domain asks to join: the
// controllers and the domain's hosts, except self.
func seeds(c *config.Config, domain, self string) map[gossip.Link][]string {
	port := c.Compute.Port(domain)
	out := map[gossip.Link][]string{}
	for l, addrs := range controllerAddrs(c) {
		for _, a := range addrs {
			out[l] = append(out[l], fmt.Sprintf("%s:%d", a, port))
		}
	}
	for _, name := range c.Compute.DomainHosts(domain) {
		h, _ := c.Compute.Host(name)
		if h.Name == self {
			continue
		}
		out[gossip.Management] = append(out[gossip.Management], fmt.Sprintf("%s:%d", h.Management, port))
		out[gossip.Storage] = append(out[gossip.Storage], fmt.Sprintf("%s:%d", h.Storage, port))
	}
	return out
}

func signalContext(parent context.Context) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(parent, syscall.SIGTERM, syscall.SIGINT)
}

func newComputeAgentCmd(g *globals) *cobra.Command {
	var host string
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run on a compute host: join its domain's two gossip pools and report its health",
		Long: `Joins the host's detection domain's pools on the management and the storage
network (compute.hosts[].management and .storage, port compute.gossip.port plus
the domain's index) and tells them every few seconds whether nova-compute runs.
It broadcasts its health when it changes, not at every check.
On SIGTERM it leaves both pools gracefully: a stopped agent is reported, never
taken for a dead host. Run it as a service (haconf renders a systemd unit).`,
		Example: "  haconf compute agent -c /etc/haconf/haconf.yaml --host cmp1",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.loadComputeConfig()
			if err != nil {
				return err
			}
			name := thisNode(host)
			h, ok := c.Compute.Host(name)
			if !ok {
				return cli.Usagef("host %q is not in compute.hosts of %s (use --host)", name, c.File)
			}
			key, err := gossipKey(c.Compute)
			if err != nil {
				return err
			}
			domain := c.Compute.DomainOf(name)
			port := c.Compute.Port(domain)
			mg, err := addrPort(h.Management, port)
			if err != nil {
				return err
			}
			st, err := addrPort(h.Storage, port)
			if err != nil {
				return err
			}
			ctx, stop := signalContext(cmd.Context())
			defer stop()
			pools, err := gossip.Join(ctx, gossip.Config{
				Name: name, Domain: domain, Role: gossip.RoleAgent,
				Bind:  map[gossip.Link]netip.AddrPort{gossip.Management: mg, gossip.Storage: st},
				Seeds: seeds(c, domain, name), Key: key, Profile: c.Compute.Gossip.Profile, Logger: g.logger,
			})
			if err != nil {
				return err
			}
			g.logger.Info("compute agent joined", "host", name, "domain", domain, "management", mg, "storage", st)
			last := false
			for {
				// Broadcast only when it changed (SetHealth).
				health := gossip.Health{NovaCompute: compute.NovaComputeRunning(), Checked: time.Now()}
				if err := pools.SetHealth(health); errors.Is(err, gossip.ErrBroadcastPending) {
					g.logger.Debug("the host's health is set; its broadcast is still queued", "err", err)
				} else if err != nil {
					g.logger.Warn("cannot publish the host's health", "err", err)
				}
				if health.NovaCompute != last {
					g.logger.Info("nova-compute", "running", health.NovaCompute)
					last = health.NovaCompute
				}
				select {
				case <-ctx.Done():
					g.logger.Info("compute agent leaving")
					return pools.Leave(5 * time.Second)
				case <-time.After(5 * time.Second):
				}
			}
		},
	}
	cmd.Flags().StringVar(&host, "host", "", "this host's name in compute.hosts (default: the short hostname)")
	return cmd
}

// novaClient logs in to Keystone once, with the password from its file.
func novaClient(ctx context.Context, c *compute.Config) (*nova.Client, error) {
	pw, err := secretfile.Read(c.Nova.PasswordFile, 4<<10, 0o600)
	if err != nil {
		return nil, fmt.Errorf("nova password (compute.nova.password_file): %w", err)
	}
	return nova.New(ctx, nova.Auth{
		AuthURL: c.Nova.AuthURL, Username: c.Nova.Username, Password: strings.TrimRight(string(pw), "\r\n"),
		ProjectName: c.Nova.Project, UserDomainName: c.Nova.UserDomain, ProjectDomainName: c.Nova.ProjectDomain,
		Region: c.Nova.Region, Interface: c.Nova.Interface,
	}, nova.HTTPClient(c.NovaCalls()))
}

// controllerIdentity is the controller's name and addresses: this node
// of the pair, or compute.controller.
func controllerIdentity(c *config.Config, nodeFlag string) (name, mgmt, stor string, err error) {
	if !c.ComputeOnly() {
		name, err := controllerName(c, nodeFlag)
		if err != nil {
			return "", "", "", err
		}
		n, _ := c.Node(name)
		return name, n.Management, n.Storage, nil
	}
	cc := c.Compute.Controller
	if cc.Management == "" || cc.Storage == "" {
		return "", "", "", cli.WithCode(cli.ExitConfig, fmt.Errorf("%s: compute.controller.management and .storage are required without the controller pair", c.File))
	}
	name = cc.Name
	if name == "" {
		name = thisNode(nodeFlag)
	}
	return name, cc.Management, cc.Storage, nil
}

func newComputeControllerCmd(g *globals) *cobra.Command {
	var node string
	cmd := &cobra.Command{
		Use:   "controller",
		Short: "Run the one decider: watch every host on both networks, fence and evacuate failed ones",
		Long: `Joins every detection domain's two pools, judges each host every second and
carries out each host failure: fence, force down and disable its nova-compute,
evacuate its instances to chosen targets, wait until each runs elsewhere. Every
step is recorded: with the pair in MariaDB (database haconf, through the VIP),
so the controller started on the other node resumes it; without the pair in
compute.state_dir. haconf compute status reads it.

Exactly one controller may run: with the pair it is a Pacemaker resource
colocated with the VIP; without it, run it on one machine only.`,
		Example: "  haconf compute controller -c /etc/haconf/haconf.yaml",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.loadComputeConfig()
			if err != nil {
				return err
			}
			name, mgmt, stor, err := controllerIdentity(c, node)
			if err != nil {
				return err
			}
			key, err := gossipKey(c.Compute)
			if err != nil {
				return err
			}
			ctx, stop := signalContext(cmd.Context())
			defer stop()
			var all []*gossip.Pools
			defer func() {
				for _, p := range all {
					_ = p.Leave(2 * time.Second)
				}
			}()
			for _, domain := range c.Compute.DomainNames() {
				port := c.Compute.Port(domain)
				mg, err := addrPort(mgmt, port)
				if err != nil {
					return err
				}
				st, err := addrPort(stor, port)
				if err != nil {
					return err
				}
				p, err := gossip.Join(ctx, gossip.Config{
					Name: name, Domain: domain, Role: gossip.RoleController,
					Bind:  map[gossip.Link]netip.AddrPort{gossip.Management: mg, gossip.Storage: st},
					Seeds: seeds(c, domain, name), Key: key, Profile: c.Compute.Gossip.Profile, Logger: g.logger,
				})
				if err != nil {
					return fmt.Errorf("join domain %s: %w", domain, err)
				}
				all = append(all, p)
				go logEvents(ctx, g.logger, p)
			}
			// Nova is logged in to lazily: the controller judges and fences
			// while Keystone or Nova is down, and its incidents wait for it.
			nc := &compute.LazyNova{Connect: func(ctx context.Context) (compute.Nova, error) {
				n, err := novaClient(ctx, c.Compute)
				if err != nil {
					g.logger.Warn("cannot log in to Nova yet; retrying", "err", err)
					return nil, err
				}
				return n, nil
			}}
			store, closeStore, err := computeStore(c)
			if err != nil {
				return err
			}
			defer closeStore()
			ctl := &compute.Controller{
				Config: c.Compute,
				Nova:   nc,
				Fencer: &compute.Fencer{Runner: runner.Exec{}},
				Store:  store,
				Views:  func() []compute.HostView { return views(all) },
				Logger: g.logger,
			}
			if addr := c.Compute.Controller.Listen; addr != "" {
				if err := serveComputeMetrics(ctx, addr, store, g.logger); err != nil {
					return err
				}
			}
			g.logger.Info("compute controller started", "name", name, "domains", c.Compute.DomainNames(), "hosts", len(c.Compute.Hosts))
			return ctl.Run(ctx, name)
		},
	}
	cmd.Flags().StringVar(&node, "node", "", "this controller's name (default: the short hostname)")
	return cmd
}

// serveComputeMetrics serves /metrics and /status (the published status,
// JSON) on addr until ctx ends.
func serveComputeMetrics(ctx context.Context, addr string, store compute.Store, log *slog.Logger) error {
	reg := prometheus.NewRegistry()
	reg.MustRegister(compute.Metrics{Store: store})
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		st, err := store.Status(r.Context())
		switch {
		case errors.Is(err, compute.ErrNoStatus):
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		case err != nil:
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = cli.WriteJSON(w, "haconf.compute.status/v1", st)
	})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("compute.controller.listen: %w", err)
	}
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		hs.Close()
	}()
	go func() {
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("compute metrics endpoint", "err", err)
		}
	}()
	return nil
}

func logEvents(ctx context.Context, log *slog.Logger, p *gossip.Pools) {
	for {
		select {
		case <-ctx.Done():
			return
		case e := <-p.Events():
			if e.Role != gossip.RoleAgent {
				continue
			}
			if e.Alive {
				log.Info("compute host alive", "host", e.Name, "link", e.Link, "domain", e.Domain)
			} else {
				log.Warn("compute host unreachable", "host", e.Name, "link", e.Link, "domain", e.Domain)
			}
		}
	}
}

// views merges the pools' members into the controller's host views.
func views(pools []*gossip.Pools) []compute.HostView {
	var out []compute.HostView
	for _, p := range pools {
		for _, m := range p.View() {
			if m.Role != gossip.RoleAgent {
				continue
			}
			v := compute.HostView{Name: m.Name, Domain: m.Domain, Health: m.Health, Links: map[gossip.Link]compute.LinkView{}}
			for l, s := range m.Links {
				v.Links[l] = compute.LinkView{Seen: true, Alive: s.Alive, Left: s.Left, Since: s.Since}
			}
			out = append(out, v)
		}
	}
	return out
}

// openComputeStore loads haconf.yaml's compute section and opens its
// store (computeStore), for the commands that need nothing else.
func (g *globals) openComputeStore() (compute.Store, func(), error) {
	c, err := g.loadComputeConfig()
	if err != nil {
		return nil, nil, err
	}
	return computeStore(c)
}

// computeStore is where the controller keeps its state and the commands
// read it: with the pair, MariaDB through the VIP (the controller's record
// follows it to the other node, and either node reads it); without the
// pair, compute.state_dir. Call done when finished with it.
func computeStore(c *config.Config) (store compute.Store, done func(), err error) {
	if c.ComputeOnly() {
		return &compute.FileStore{Dir: c.Compute.StateDir}, func() {}, nil
	}
	db, err := pairDB(c)
	if err != nil {
		return nil, nil, err
	}
	return &compute.SQLStore{DB: db}, func() { db.Close() }, nil
}

// pairDB is a pool on the pair's MariaDB through the VIP, as the user of
// mysql.credentials_file: the password goes from that file to the driver,
// never to argv or a log.
func pairDB(c *config.Config) (*sql.DB, error) {
	vip, ok := c.VIP.Prefix()
	if !ok {
		return nil, cli.WithCode(cli.ExitConfig, fmt.Errorf("%s: vip.address %q is not an address/prefix: the compute state is in MariaDB behind the VIP", c.File, c.VIP.Address))
	}
	mc, err := backup.ResolveDSN("", backup.Credentials{File: c.MySQL.CredentialsFile})
	if err != nil {
		return nil, fmt.Errorf("MariaDB credentials (mysql.credentials_file): %w", err)
	}
	mc.Net, mc.Addr = "tcp", net.JoinHostPort(vip.Addr().String(), strconv.Itoa(c.MySQL.Port))
	// Each store operation has its own deadline (compute.SQLStore); the
	// dial's bounds the wait for a VIP that is not there.
	mc.Timeout = 5 * time.Second
	mc.Logger = &mysql.NopLogger{}
	conn, err := mysql.NewConnector(mc)
	if err != nil {
		return nil, fmt.Errorf("MariaDB %s: %w", backup.Where(mc), err)
	}
	db := sql.OpenDB(conn)
	db.SetMaxOpenConns(8)
	return db, nil
}

func newComputeStatusCmd(g *globals) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Every compute host on both networks, and the open incidents",
		Long: `Reads the controller's status (published every second: with the pair in
MariaDB, from either controller node; without it in compute.state_dir):
each host's condition and both links, its nova-compute service, maintenance,
and the incidents. Exit status 0 when every host is healthy and no incident is
open, 1 when a link is down or the controller's status is stale, 2 when an
incident is open or held.`,
		Example: `  haconf compute status
  haconf compute status -o json | jq '.hosts[] | select(.condition != "healthy")'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			store, closeStore, err := g.openComputeStore()
			if err != nil {
				return err
			}
			defer closeStore()
			st, err := store.Status(cmd.Context())
			if err != nil {
				return err
			}
			if err := cli.Output(cmd.OutOrStdout(), output, "haconf.compute.status/v1", st, writeComputeStatus); err != nil {
				return err
			}
			return cli.SilentExit(computeExit(st))
		},
	}
	cli.OutputFlag(cmd, &output, "text", "json")
	return cmd
}

// computeExit is the status command's exit code.
func computeExit(st *compute.Status) int {
	code := 0
	if time.Since(st.At) > 10*time.Second {
		code = 1
	}
	for _, h := range st.Hosts {
		if h.Condition != compute.Healthy {
			code = max(code, 1)
		}
	}
	for _, in := range st.Incidents {
		if !in.State.Closed() {
			code = 2
		}
	}
	return code
}

func writeComputeStatus(w io.Writer, st *compute.Status) {
	age := time.Since(st.At).Round(time.Second)
	fmt.Fprintf(w, "controller %s, started %s, status written %s ago", st.Controller, st.Started.Format(time.RFC3339), age)
	if age > 10*time.Second {
		fmt.Fprint(w, " (STALE: is the controller running?)")
	}
	fmt.Fprintln(w)
	if st.NovaError != "" {
		fmt.Fprintf(w, "nova: %s\n", st.NovaError)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tDOMAIN\tCONDITION\tMGMT\tSTORAGE\tNOVA-COMPUTE\tSERVICE\tDETAIL")
	link := func(v compute.LinkView) string {
		switch {
		case !v.Seen:
			return "-"
		case v.Alive:
			return "up"
		case v.Left:
			return "left"
		default:
			return "DOWN"
		}
	}
	for _, h := range st.Hosts {
		svc := "-"
		if s := h.Service; s != nil {
			svc = s.Status + "/" + s.State
			if s.ForcedDown {
				svc += "/forced-down"
			}
		}
		nc := "no"
		switch {
		case h.Condition == compute.Failed || h.Condition == compute.Unknown || h.Condition == compute.Stopped:
			nc = "-" // its agent's last word is stale
		case h.NovaCompute:
			nc = "running"
		}
		detail := h.Detail
		if h.Maintenance != "" {
			detail = "maintenance " + h.Maintenance
		} else if h.Wait != "" {
			detail += "; " + h.Wait
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", h.Name, h.Domain, h.Condition, link(h.Links[gossip.Management]), link(h.Links[gossip.Storage]), nc, svc, detail)
	}
	tw.Flush()
	writeIncidents(w, st.Incidents, false)
}

func writeIncidents(w io.Writer, ins []*compute.Incident, all bool) {
	n := 0
	for _, in := range ins {
		if all || !in.State.Closed() || time.Since(in.Closed) < time.Hour {
			if n == 0 {
				fmt.Fprintln(w, "\nincidents:")
			}
			n++
			fmt.Fprintf(w, "  %s\n", in.Summary())
		}
	}
}

// computeIncidents is `haconf compute incidents -o json`.
type computeIncidents struct {
	Incidents []*compute.Incident `json:"incidents"`
}

func newComputeIncidentsCmd(g *globals) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "incidents",
		Short: "Every host failure and each step haconf took, with each instance's move",
		Example: `  haconf compute incidents
  haconf compute incidents -o json | jq '.incidents[-1].steps'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			store, closeStore, err := g.openComputeStore()
			if err != nil {
				return err
			}
			defer closeStore()
			ins, err := store.Incidents(cmd.Context())
			if err != nil {
				return err
			}
			if ins == nil {
				ins = []*compute.Incident{}
			}
			return cli.Output(cmd.OutOrStdout(), output, "haconf.compute.incidents/v1", computeIncidents{ins}, func(w io.Writer, list computeIncidents) {
				if len(list.Incidents) == 0 {
					fmt.Fprintln(w, "no incidents")
				}
				for _, in := range list.Incidents {
					fmt.Fprintf(w, "%s\n", in.Summary())
					for _, s := range in.Steps {
						line := fmt.Sprintf("  %s %-10s", s.At.Format("15:04:05.000"), s.Name)
						if s.Took > 0 {
							line += " (" + s.Took.Round(time.Millisecond).String() + ")"
						}
						if s.Error != "" {
							line += " ERROR " + s.Error
						}
						if s.Detail != "" {
							line += " " + s.Detail
						}
						fmt.Fprintln(w, line)
					}
					for _, i := range in.Instances {
						target := i.FinalHost
						if target == "" {
							target = i.Target
						}
						fmt.Fprintf(w, "    %s %s %s -> %s %s\n", i.ID, i.Name, i.State, target, i.Error)
					}
				}
			})
		},
	}
	cli.OutputFlag(cmd, &output, "text", "json")
	return cmd
}

func newComputePlanCmd(g *globals) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "plan HOST",
		Short: "What would happen if HOST failed now: a target for each of its instances, or why none fits",
		Long: `Reads HOST's instances, their flavors and server groups from Nova and every
host's capacity from Placement, and runs the chooser the controller runs,
among the hosts the controller's last status shows healthy. Nothing changes.
Exit status 1 when some instance would find no target.`,
		Example: "  haconf compute plan cmp1",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.loadComputeConfig()
			if err != nil {
				return err
			}
			if _, ok := c.Compute.Host(args[0]); !ok {
				return cli.Usagef("%s is not in compute.hosts", args[0])
			}
			store, closeStore, err := computeStore(c)
			if err != nil {
				return err
			}
			defer closeStore()
			st, err := store.Status(cmd.Context())
			if err != nil {
				return err
			}
			nc, err := novaClient(cmd.Context(), c.Compute)
			if err != nil {
				return err
			}
			plan, err := compute.PlanFor(cmd.Context(), c.Compute, nc, st, args[0])
			if err != nil {
				return err
			}
			if err := cli.Output(cmd.OutOrStdout(), output, "haconf.compute.plan/v1", plan, func(w io.Writer, p compute.Plan) {
				fmt.Fprintf(w, "if %s failed now: %d instances, %d evacuable\n", p.Host, p.Instances, len(p.Placements))
				tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "SERVER\tNAME\tTARGET\tREASON")
				for _, pl := range p.Placements {
					t := pl.Host
					if t == "" {
						t = "NONE"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", pl.ServerID, pl.Name, t, pl.Reason)
				}
				tw.Flush()
				targets := make([]string, 0, len(p.Targets))
				for _, t := range p.Targets {
					targets = append(targets, fmt.Sprintf("%s (%s free)", t.Host, t.Free))
				}
				sort.Strings(targets)
				fmt.Fprintf(w, "targets: %s\n", strings.Join(targets, ", "))
			}); err != nil {
				return err
			}
			if plan.Shortfall > 0 {
				return cli.SilentExit(1)
			}
			return nil
		},
	}
	cli.OutputFlag(cmd, &output, "text", "json")
	return cmd
}

func newComputeMaintenanceCmd(g *globals) *cobra.Command {
	var ttl time.Duration
	var reason string
	cmd := &cobra.Command{
		Use:   "maintenance HOST on|off",
		Short: "Take a compute host out of haconf's hands (it is not judged) until --ttl passes, or give it back",
		Example: `  haconf compute maintenance cmp3 on --ttl 2h --reason "BIOS update"
  haconf compute maintenance cmp3 off`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.loadComputeConfig()
			if err != nil {
				return err
			}
			host, mode := args[0], args[1]
			if _, ok := c.Compute.Host(host); !ok {
				return cli.Usagef("%s is not in compute.hosts", host)
			}
			if mode != "on" && mode != "off" {
				return cli.Usagef("want on or off, not %q", mode)
			}
			if ttl <= 0 || ttl > 7*24*time.Hour {
				return cli.Usagef("--ttl must be between 1s and 168h")
			}
			store, closeStore, err := computeStore(c)
			if err != nil {
				return err
			}
			defer closeStore()
			until := time.Now().Add(ttl)
			err = store.UpdateHolds(cmd.Context(), func(h *compute.Holds) {
				if h.Maintenance == nil {
					h.Maintenance = map[string]compute.Maintenance{}
				}
				if mode == "off" {
					delete(h.Maintenance, host)
					return
				}
				h.Maintenance[host] = compute.Maintenance{Until: until, Reason: reason}
			})
			if err != nil {
				return err
			}
			if mode == "on" {
				fmt.Fprintf(cmd.OutOrStdout(), "%s: in maintenance until %s: haconf does not act on its failure\n", host, until.Format(time.RFC3339))
			} else {
				fmt.Fprintf(cmd.OutOrStdout(), "%s: back in haconf's hands\n", host)
			}
			return nil
		},
	}
	cmd.Flags().DurationVar(&ttl, "ttl", 2*time.Hour, "maintenance ends by itself after this")
	cmd.Flags().StringVar(&reason, "reason", "", "shown in haconf compute status")
	return cmd
}

func newComputeResumeCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "resume",
		Short: "Let the controller act on the incidents a mass-failure guard held",
		Long: `A guard holds every action when too many hosts fail at once (the controller
itself may be the one cut off). Check the hosts first (haconf compute status:
are they really down?), then resume: the held incidents are fenced and
evacuated, and failures before now no longer count towards the guards.`,
		Example: "  haconf compute status && haconf compute resume",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			store, closeStore, err := g.openComputeStore()
			if err != nil {
				return err
			}
			defer closeStore()
			now := time.Now()
			if err := store.UpdateHolds(cmd.Context(), func(h *compute.Holds) { h.Resumed = now }); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "resumed at %s: held incidents proceed\n", now.Format(time.RFC3339))
			return nil
		},
	}
}
