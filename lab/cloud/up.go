package cloud

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/haconf/haconf/internal/atomicfile"
	"github.com/haconf/haconf/internal/runner"
)

// Python is Debian's interpreter: the OpenStack modules are in its path.
const Python = "/usr/bin/python3"

// novaComputeLauncher starts nova-compute from python3-nova. Debian's
// nova-compute package, which holds the console script, would pull qemu,
// libvirt and open-iscsi.
const novaComputeLauncher = `import sys; from nova.cmd.compute import main; sys.argv[0] = "nova-compute"; sys.exit(main())`

// masakariLauncher starts masakari-api or masakari-engine with one
// workaround: Debian 12's oslo.messaging 14.0.3 rebuilds a notification's
// context from a dict without read_deleted, and masakari 14.0.2's context
// then raises ValueError, so every create answered 500.
const masakariLauncher = `import sys
import masakari.context as mc
_orig = mc.RequestContext.from_dict.__func__
def _from_dict(cls, values, **kwargs):
    values = dict(values)
    if values.get("read_deleted") is None:
        values["read_deleted"] = "no"
    return _orig(cls, values, **kwargs)
mc.RequestContext.from_dict = classmethod(_from_dict)
which = sys.argv.pop(1)
sys.argv[0] = "masakari-" + which
if which == "api":
    from masakari.cmd.api import main
else:
    from masakari.cmd.engine import main
sys.exit(main())
`

// Service names (run/NAME.pid, log/NAME.log), in start order.
const (
	svcEPMD      = "epmd"
	svcMariaDB   = "mariadb"
	svcRabbit    = "rabbitmq"
	svcKeystone  = "keystone"
	svcPlacement = "placement"
	svcNovaAPI   = "nova-api"
	svcConductor = "nova-conductor"
	svcScheduler = "nova-scheduler"
	svcStubs     = "stubs"
	svcMasakari  = "masakari-api"
	svcEngine    = "masakari-engine"
)

// controlServices lists the control plane's services, in start order.
func controlServices(masakari bool) []string {
	s := []string{svcEPMD, svcMariaDB, svcRabbit, svcKeystone, svcPlacement, svcNovaAPI, svcConductor, svcScheduler, svcStubs}
	if masakari {
		s = append(s, svcMasakari, svcEngine)
	}
	return s
}

func computeService(h Host) string { return "nova-" + h.Name }

// argv returns how service name is started.
func (c *Cloud) serviceDef(name string) service {
	etc := func(elem ...string) string { return filepath.Join(append([]string{c.etcDir()}, elem...)...) }
	nova := []string{"--config-file", etc("nova", "nova.conf"), "--config-file", etc("nova", "nova-db.conf")}
	switch name {
	case svcEPMD:
		return service{Name: name, Argv: []string{"epmd", "-address", "127.0.0.1", "-port", strconv.Itoa(EPMDPort)}}
	case svcMariaDB:
		return service{Name: name, Argv: []string{"mariadbd", "--no-defaults", "--datadir=" + c.path("state", "mysql", "data"),
			"--socket=" + c.mysqlSocket(), "--skip-networking", "--user=root", "--pid-file=" + c.path("run", "mariadbd.pid"),
			"--log-error=" + c.path("log", "mariadbd.log"), "--tmpdir=" + c.path("state", "mysql", "tmp"), "--skip-name-resolve",
			"--innodb-buffer-pool-size=128M", "--innodb-flush-log-at-trx-commit=0", "--skip-log-bin", "--max-connections=500"}}
	case svcRabbit:
		return service{Name: name, Argv: []string{"/usr/lib/rabbitmq/bin/rabbitmq-server"}, Env: c.rabbitEnv()}
	case svcKeystone, svcPlacement, svcNovaAPI:
		return service{Name: name, Argv: []string{"uwsgi-core", "--ini", etc("uwsgi-" + name + ".ini")}}
	case svcConductor, svcScheduler:
		return service{Name: name, Argv: append([]string{name}, nova...)}
	case svcStubs:
		return service{Name: name, Argv: []string{c.LabBinary, "compute", "stubs", "--dir", c.Dir}}
	case svcMasakari, svcEngine:
		return service{Name: name, Argv: []string{Python, "-c", masakariLauncher, strings.TrimPrefix(name, "masakari-"),
			"--config-file", etc("masakari", "masakari.conf"), "--config-file", etc("masakari", masakariLocal)}}
	}
	panic("unknown service " + name)
}

func (c *Cloud) rabbitEnv() []string {
	r := func(elem ...string) string {
		return filepath.Join(append([]string{c.stateDir(), "rabbit"}, elem...)...)
	}
	return []string{
		"HOME=" + r(), // the Erlang cookie
		"RABBITMQ_NODENAME=haconf-cloud@localhost",
		"RABBITMQ_DIST_PORT=" + strconv.Itoa(RabbitDist),
		"RABBITMQ_MNESIA_BASE=" + r("mnesia"),
		"RABBITMQ_LOG_BASE=" + c.path("log", "rabbitmq"),
		"RABBITMQ_ENABLED_PLUGINS_FILE=" + c.path("etc", "rabbitmq", "enabled_plugins"),
		"RABBITMQ_CONF_ENV_FILE=" + c.path("etc", "rabbitmq", "env.conf"),
		"RABBITMQ_CONFIG_FILE=" + c.path("etc", "rabbitmq", "rabbitmq.conf"),
		"RABBITMQ_ADVANCED_CONFIG_FILE=" + c.path("etc", "rabbitmq", "advanced.config"),
		"RABBITMQ_PID_FILE=" + c.path("run", "rabbitmq-beam.pid"),
		"ERL_EPMD_ADDRESS=127.0.0.1",
		"ERL_EPMD_PORT=" + strconv.Itoa(EPMDPort),
		"RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=-kernel inet_dist_use_interface {127,0,0,1}",
	}
}

// rabbitConf is the RabbitMQ configuration: AMQP on the control address
// only, and the cloud's user (made on the first boot of an empty node).
func rabbitConf(s Secrets) string {
	return fmt.Sprintf("%slisteners.tcp.1 = %s:%d\ndefault_user = openstack\ndefault_pass = %s\n"+
		"loopback_users = none\nlog.file.level = warning\n", header, ControlAddr, RabbitPort, s.Rabbit)
}

// UpOptions tune Up.
type UpOptions struct {
	Hosts    int  // compute hosts; DefaultHosts when 0
	Masakari bool // also run masakari-api and masakari-engine
	// HA runs haconf's compute failover: an agent on every host and the
	// controller on the lab host (Cloud.HaconfBinary).
	HA bool
}

// Up starts the control plane and the compute hosts cmp1..cmpN and waits
// until every nova-compute is up in Nova and known to placement. The first
// up makes the databases (cold); later ones reuse them (warm). Services
// already running are left as they are; hosts beyond N from an earlier up
// are removed.
func (c *Cloud) Up(ctx context.Context, o UpOptions) error {
	if o.Hosts == 0 {
		o.Hosts = DefaultHosts
	}
	if o.Hosts < 1 || o.Hosts > MaxHosts {
		return fmt.Errorf("hosts: %d: want 1 to %d", o.Hosts, MaxHosts)
	}
	if err := c.checkDir(); err != nil {
		return err
	}
	start := time.Now()
	step := func(msg string, args ...any) {
		c.logger().Info(msg, append(args, "elapsed", time.Since(start).Round(100*time.Millisecond))...)
	}
	for _, d := range []string{c.Dir, c.etcDir(), c.runDir(), c.logDir(), c.path("log", "rabbitmq"), c.path("hosts")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	if err := os.Chmod(c.Dir, 0o700); err != nil {
		return err
	}
	if _, ok := c.running(svcMariaDB); ok {
		// Up on a running cloud: keep its state as it is.
	} else if warm, err := c.prepareState(ctx); err != nil {
		return err
	} else {
		step("state", "warm", warm)
	}
	secrets, err := c.secrets()
	if err != nil {
		return err
	}
	hosts := Hosts(o.Hosts)
	if err := c.writeConfig(newLayout(c, secrets, o.Masakari), hosts); err != nil {
		return err
	}
	if o.HA {
		if err := c.writeHA(hosts, secrets); err != nil {
			return err
		}
	}
	for _, d := range [][]string{{"state", "mysql", "tmp"}, {"state", "rabbit"}, {"state", "nova", "lock"}, {"state", "keystone"}, {"state", "masakari", "lock"}} {
		if err := os.MkdirAll(c.path(d...), 0o700); err != nil {
			return err
		}
	}
	if err := c.saveSettings(settings(o)); err != nil {
		return err
	}
	if err := c.setupBridges(ctx); err != nil {
		return err
	}

	// Databases and the message bus.
	if err := c.installMariaDB(ctx); err != nil {
		return err
	}
	for _, s := range []string{svcEPMD, svcMariaDB, svcRabbit} {
		if err := c.ensure(s); err != nil {
			return err
		}
	}
	if err := c.waitMariaDB(ctx); err != nil {
		return err
	}
	step("mariadb answers")

	// Warm: the databases are made, so everything starts at once, and
	// the Python services import their code while Keystone does.
	warm := c.done(".done-keystone-db", ".done-keystone-setup", ".done-placement-db", ".done-nova-db") &&
		(!o.Masakari || c.done(".done-masakari-db"))
	if warm {
		if err := c.startAll(ctx, o, hosts); err != nil {
			return err
		}
	}

	// Keystone, and meanwhile the other databases.
	var wg sync.WaitGroup
	var dbErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		dbErr = c.syncDatabases(ctx, o.Masakari)
	}()
	err = c.startKeystone(ctx, secrets)
	wg.Wait()
	if err = errors.Join(err, dbErr); err != nil {
		return err
	}
	step("keystone ready, databases synced")

	if !warm {
		if err := c.startAll(ctx, o, hosts); err != nil {
			return err
		}
	}
	step("control plane and hosts started", "hosts", o.Hosts)
	if err := waitFor(ctx, 5*time.Minute, "nova-api to answer", func() (bool, error) {
		return answers(ctx, novaURL()+"/"), nil
	}); err != nil {
		return c.explain(err, svcNovaAPI)
	}
	step("nova-api answers")
	a, err := login(ctx, secrets.Admin)
	if err != nil {
		return err
	}
	if err := atomicfile.Write(c.path("state", "admin-project"), []byte(a.project+"\n"), 0o600); err != nil {
		return err
	}
	if err := c.waitComputes(ctx, a, hosts); err != nil {
		return err
	}
	step("nova-compute up on every host")
	if err := c.discoverHosts(ctx, hosts); err != nil {
		return err
	}
	if err := c.once(".done-flavor", func() error { return a.setupFlavor(ctx) }); err != nil {
		return err
	}
	if err := waitFor(ctx, 3*time.Minute, "placement to know every host", func() (bool, error) {
		rps, err := a.resourceProviders(ctx)
		if err != nil {
			return false, nil
		}
		for _, h := range hosts {
			if !slices.Contains(rps, h.Name) {
				return false, nil
			}
		}
		return true, nil
	}); err != nil {
		return err
	}
	if o.HA {
		if err := c.startHA(ctx, hosts); err != nil {
			return c.explain(err, svcController)
		}
		step("haconf compute failover running", "controller", svcController)
	} else if err := c.stop(svcController, 10*time.Second); err != nil {
		return err
	}
	step("cloud ready", "hosts", o.Hosts)
	return nil
}

// startAll starts every service and host that does not run yet.
func (c *Cloud) startAll(ctx context.Context, o UpOptions, hosts []Host) error {
	for _, s := range controlServices(o.Masakari) {
		if err := c.ensure(s); err != nil {
			return err
		}
	}
	if err := c.removeHostsBeyond(ctx, o.Hosts); err != nil {
		return err
	}
	for _, h := range hosts {
		if err := c.powerOn(ctx, h); err != nil {
			return err
		}
	}
	return nil
}

// done reports whether every marker of a cold start's steps exists.
func (c *Cloud) done(markers ...string) bool {
	for _, m := range markers {
		if _, err := os.Stat(c.path("state", m)); err != nil {
			return false
		}
	}
	return true
}

// checkDir refuses a relative or root directory.
func (c *Cloud) checkDir() error {
	if !filepath.IsAbs(c.Dir) || filepath.Clean(c.Dir) == "/" {
		return fmt.Errorf("compute lab directory %q: want an absolute path other than /", c.Dir)
	}
	return nil
}

// writeConfig writes every configuration file, 0600, when its content
// changed.
func (c *Cloud) writeConfig(l layout, hosts []Host) error {
	files, err := render(l, hosts)
	if err != nil {
		return err
	}
	files = append(files,
		configFile{"etc/rabbitmq/rabbitmq.conf", rabbitConf(l.Secrets)},
		configFile{"etc/rabbitmq/enabled_plugins", "[].\n"},
		configFile{"etc/rabbitmq/env.conf", ""},
		configFile{"etc/rabbitmq/advanced.config", "[].\n"},
	)
	paste := []struct{ from, to string }{{"/etc/nova/api-paste.ini", "etc/nova/api-paste.ini"}}
	if l.Masakari {
		paste = append(paste, struct{ from, to string }{"/etc/masakari/api-paste.ini", "etc/masakari/api-paste.ini"})
	}
	for _, p := range paste {
		b, err := os.ReadFile(p.from)
		if err != nil {
			return fmt.Errorf("%w (make deps installs the packages)", err)
		}
		files = append(files, configFile{p.to, string(b)})
	}
	if l.Masakari {
		// The local overrides (SetMasakari) are the user's: kept as they are.
		local := c.path("etc", "masakari", masakariLocal)
		if _, err := os.Stat(local); errors.Is(err, fs.ErrNotExist) {
			files = append(files, configFile{"etc/masakari/" + masakariLocal, masakariLocalHeader})
		}
	}
	for _, f := range files {
		path := c.path(f.Path)
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return err
		}
		if _, err := atomicfile.WriteIfChanged(path, []byte(f.Content), 0o600); err != nil {
			return err
		}
	}
	return nil
}

// masakariLocal is the masakari configuration file read after the lab's
// own: masakari's settings under test (SetMasakari).
const masakariLocal = "masakari-local.conf"

const masakariLocalHeader = "# haconf-lab compute: masakari settings that override masakari.conf (SetMasakari)\n"

// SetMasakari makes masakari-engine run with the [DEFAULT] options given
// (e.g. wait_period_after_service_update: 0), masakari's defaults for
// every other one, and restarts it when it runs.
func (c *Cloud) SetMasakari(opts map[string]string) error {
	var b strings.Builder
	b.WriteString(masakariLocalHeader)
	b.WriteString("[DEFAULT]\n")
	keys := make([]string, 0, len(opts))
	for k := range opts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "%s = %s\n", k, opts[k])
	}
	if err := atomicfile.Write(c.path("etc", "masakari", masakariLocal), []byte(b.String()), 0o600); err != nil {
		return err
	}
	if _, ok := c.running(svcEngine); !ok {
		return nil
	}
	if err := c.stop(svcEngine, 10*time.Second); err != nil {
		return err
	}
	return c.ensure(svcEngine)
}

// ensure starts service name unless it runs.
func (c *Cloud) ensure(name string) error {
	if _, ok := c.running(name); ok {
		return nil
	}
	_, err := c.spawn(c.serviceDef(name))
	return err
}

// once runs f unless state/marker exists, and creates the marker when f
// succeeds: the steps of a cold start that a warm one skips.
func (c *Cloud) once(marker string, f func() error) error {
	path := c.path("state", marker)
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	if err := f(); err != nil {
		return err
	}
	return os.WriteFile(path, nil, 0o600)
}

// manage runs an OpenStack management command (keystone-manage,
// nova-manage, ...), logging into log/manage.log, with env added.
func (c *Cloud) manage(ctx context.Context, env []string, argv ...string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	c.logger().Debug("running", "argv", strings.Join(argv, " "))
	out, err := runner.Exec{}.RunCmd(ctx, runner.Cmd{Name: argv[0], Args: argv[1:], Env: env})
	if f, ferr := os.OpenFile(c.logFile("manage"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600); ferr == nil {
		fmt.Fprintf(f, "---- %s %s\n%s", time.Now().UTC().Format(time.RFC3339), strings.Join(argv, " "), out)
		if err != nil {
			fmt.Fprintf(f, "error: %v\n", err)
		}
		f.Close()
	}
	return err
}

func (c *Cloud) installMariaDB(ctx context.Context) error {
	datadir := c.path("state", "mysql", "data")
	if _, err := os.Stat(filepath.Join(datadir, "mysql")); err == nil {
		return nil
	}
	os.RemoveAll(datadir)
	return c.manage(ctx, nil, "mariadb-install-db", "--no-defaults", "--datadir="+datadir, "--user=root",
		"--skip-test-db", "--auth-root-authentication-method=normal")
}

func (c *Cloud) mariadb(ctx context.Context, sql string) error {
	_, err := c.Run.Run(ctx, "mariadb", "--no-defaults", "--socket="+c.mysqlSocket(), "-uroot", "-e", sql)
	return err
}

var databases = []string{"keystone", "placement", "nova_api", "nova", "nova_cell0", "masakari"}

func (c *Cloud) waitMariaDB(ctx context.Context) error {
	if err := waitFor(ctx, 2*time.Minute, "mariadb to answer", func() (bool, error) {
		return c.mariadb(ctx, "select 1") == nil, nil
	}); err != nil {
		return c.explain(err, svcMariaDB)
	}
	var sql strings.Builder
	for _, d := range databases {
		fmt.Fprintf(&sql, "create database if not exists %s;", d)
	}
	return c.mariadb(ctx, sql.String())
}

// startKeystone bootstraps Keystone's database (cold), starts it and
// registers the service users and the catalog (cold).
func (c *Cloud) startKeystone(ctx context.Context, s Secrets) error {
	conf := []string{"keystone-manage", "--config-file", c.path("etc", "keystone", "keystone.conf")}
	err := c.once(".done-keystone-db", func() error {
		for _, args := range [][]string{
			{"db_sync"},
			{"fernet_setup", "--keystone-user", "root", "--keystone-group", "root"},
			{"credential_setup", "--keystone-user", "root", "--keystone-group", "root"},
		} {
			if err := c.manage(ctx, nil, append(conf, args...)...); err != nil {
				return err
			}
		}
		// The admin password goes through the environment, not argv.
		url := keystoneURL() + "/"
		return c.manage(ctx, []string{"OS_BOOTSTRAP_PASSWORD=" + s.Admin}, append(conf, "bootstrap",
			"--bootstrap-region-id", Region, "--bootstrap-admin-url", url,
			"--bootstrap-internal-url", url, "--bootstrap-public-url", url)...)
	})
	if err != nil {
		return err
	}
	if err := c.ensure(svcKeystone); err != nil {
		return err
	}
	if err := waitFor(ctx, 3*time.Minute, "keystone to answer", func() (bool, error) {
		return answers(ctx, keystoneURL()), nil
	}); err != nil {
		return c.explain(err, svcKeystone)
	}
	return c.once(".done-keystone-setup", func() error {
		a, err := login(ctx, s.Admin)
		if err != nil {
			return err
		}
		return a.setupKeystone(ctx, s.Service)
	})
}

// syncDatabases makes placement's, Nova's (API, cell0, cell1) and
// masakari's schemas (cold).
func (c *Cloud) syncDatabases(ctx context.Context, masakari bool) error {
	err := c.once(".done-placement-db", func() error {
		return c.manage(ctx, nil, "placement-manage", "--config-file", c.path("etc", "placement", "placement.conf"), "db", "sync")
	})
	if err != nil {
		return err
	}
	nova := []string{"nova-manage", "--config-file", c.path("etc", "nova", "nova.conf"), "--config-file", c.path("etc", "nova", "nova-db.conf")}
	err = c.once(".done-nova-db", func() error {
		for _, args := range [][]string{{"api_db", "sync"}, {"cell_v2", "map_cell0"}, {"cell_v2", "create_cell", "--name=cell1"}, {"db", "sync"}} {
			if err := c.manage(ctx, nil, append(nova, args...)...); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil || !masakari {
		return err
	}
	return c.once(".done-masakari-db", func() error {
		return c.manage(ctx, nil, "masakari-manage", "--config-file", c.path("etc", "masakari", "masakari.conf"), "db", "sync")
	})
}

// waitComputes waits until every host's nova-compute is up in Nova,
// lifting forced_down left by an earlier run (Nova refuses that until the
// restarted nova-compute has cleaned up its host's evacuations).
func (c *Cloud) waitComputes(ctx context.Context, a *api, hosts []Host) error {
	return waitFor(ctx, 5*time.Minute, "nova-compute to be up on every host", func() (bool, error) {
		svcs, err := a.computeServices(ctx)
		if err != nil {
			return false, nil
		}
		up := map[string]bool{}
		for _, s := range svcs {
			if s.ForcedDown {
				if err := a.setForcedDown(ctx, s.ID, false); err != nil {
					c.logger().Debug("forced_down not lifted yet", "host", s.Host, "err", err)
				}
			}
			up[s.Host] = s.State == "up" && !s.ForcedDown
		}
		for _, h := range hosts {
			if !up[h.Name] {
				return false, nil
			}
		}
		return true, nil
	})
}

// discoverHosts maps new compute hosts to cell1 (nova-manage cell_v2
// discover_hosts), when a host is not known to be mapped yet.
func (c *Cloud) discoverHosts(ctx context.Context, hosts []Host) error {
	file := c.path("state", "discovered")
	b, _ := os.ReadFile(file)
	known := strings.Fields(string(b))
	var missing bool
	for _, h := range hosts {
		missing = missing || !slices.Contains(known, h.Name)
	}
	if !missing {
		return nil
	}
	if err := c.manage(ctx, nil, "nova-manage", "--config-file", c.path("etc", "nova", "nova.conf"), "--config-file", c.path("etc", "nova", "nova-db.conf"),
		"cell_v2", "discover_hosts"); err != nil {
		return err
	}
	for _, h := range hosts {
		if !slices.Contains(known, h.Name) {
			known = append(known, h.Name)
		}
	}
	return os.WriteFile(file, []byte(strings.Join(known, "\n")+"\n"), 0o600)
}

// waitFor polls ok every half second until it says true, fails, or limit
// passes.
func waitFor(ctx context.Context, limit time.Duration, what string, ok func() (bool, error)) error {
	deadline := time.Now().Add(limit)
	for {
		done, err := ok()
		if err != nil {
			return err
		}
		if done {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s waiting for %s", limit, what)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// explain adds to err whether service name still runs and the end of its log.
func (c *Cloud) explain(err error, name string) error {
	state := "running"
	if _, ok := c.running(name); !ok {
		state = "not running"
	}
	tail := ""
	if b, rerr := os.ReadFile(c.logFile(name)); rerr == nil {
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		if len(lines) > 8 {
			lines = lines[len(lines)-8:]
		}
		tail = "\n  " + strings.Join(lines, "\n  ")
	}
	return fmt.Errorf("%w (%s is %s; %s:%s)", err, name, state, c.logFile(name), tail)
}
