package bootstrap

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/haconf/haconf/drbd"
	"github.com/haconf/haconf/internal/atomicfile"
	"github.com/haconf/haconf/internal/config"
	"github.com/haconf/haconf/internal/runner"
	"github.com/haconf/haconf/pacemaker"
	"github.com/haconf/haconf/rabbitmq"
	"github.com/haconf/haconf/templates"
)

// Runner runs commands on the controller being bootstrapped.
type Runner interface {
	RunCmd(ctx context.Context, c runner.Cmd) ([]byte, error)
	StartDaemon(name string, args []string, logPath string) (int, error)
}

// Result is what one step did (or, in a dry run, would do).
type Result struct {
	Step    string `json:"step"`
	Changed bool   `json:"changed"`
	Detail  string `json:"detail"`
}

// Bootstrap turns this controller into its half of the pair. Every step
// looks before it acts, so a second run changes nothing.
type Bootstrap struct {
	Cfg         *config.Config
	Node        string
	Secrets     *Secrets
	R           Runner
	Log         *slog.Logger
	DryRun      bool
	DRBDVersion string // 8.4 or 9 (resolved)
	Root        string // "/" in production; every file it reads or writes is under it
	// Progress, when set, hears each result as soon as its step ends.
	Progress func(Result)
	// Timeout bounds each wait (peer connection, membership, resources).
	Timeout time.Duration
	// NoWait skips waiting for every resource to run (a node rejoining
	// after a crash only needs its own part up).
	NoWait bool
	// Broker checks that this node's RabbitMQ answers (default: the AMQP
	// handshake on 127.0.0.1): Pacemaker reports the clone started as
	// soon as the agent launched it, and the broker boots after that.
	Broker func(ctx context.Context) error

	rendered []templates.File // this node's files, rendered once per run
	// joined says why this node belongs to a bootstrapped pair ("" when
	// it does not yet): read once, before any step.
	joined string
}

// A step is one part of the bootstrap; Run runs them in order (the shape
// of kind's cluster creation actions). Most steps look, then act: check
// changes nothing and returns what is left to do as apply - nil when
// nothing is - with a detail that says why nothing is left, or what apply
// will do (a dry run's report: Run never applies in a dry run). A step
// whose looks depend on its own changes (a service it stops, a volume it
// mounts) has do instead, which looks as it acts and honours DryRun
// itself.
type step struct {
	name  string
	check func(context.Context) (apply applyFunc, detail string, err error)
	do    func(context.Context) (changed bool, detail string, err error)
}

// applyFunc does what a check found left to do and says what it did.
type applyFunc func(context.Context) (detail string, err error)

// steps are the bootstrap, in order.
func (b *Bootstrap) steps() []step {
	return []step{
		{name: "packages", check: b.packages},
		{name: "secrets", check: b.secrets},
		{name: "files", check: b.files},
		{name: "rabbitmq", do: b.rabbitmq},
		{name: "drbd", check: b.drbdUp},
		{name: "initial-sync", check: b.initialSync},
		{name: "datadir", do: b.datadir},
		{name: "cluster-stack", do: b.clusterStack},
		{name: "cib", do: b.cib},
		{name: "resources", check: b.resources},
		{name: "watchdog", check: b.watchdog},
	}
}

// Steps are the names of the steps, in order.
var Steps = func() []string {
	var names []string
	for _, s := range (*Bootstrap)(nil).steps() {
		names = append(names, s.name)
	}
	return names
}()

// First reports whether this node is the one that does the one-time work
// (initial sync, filesystem, datadir, CIB): nodes[0].
func (b *Bootstrap) First() bool { return b.Cfg.Nodes[0].Name == b.Node }

func (b *Bootstrap) run(ctx context.Context, name string, args ...string) ([]byte, error) {
	return b.R.RunCmd(ctx, runner.Cmd{Name: name, Args: args})
}

// toolRunner lets the drivers (pacemaker.Cluster, drbd.Adm) run their tools
// through the bootstrap runner.
type toolRunner struct{ b *Bootstrap }

func (t toolRunner) Run(ctx context.Context, name string, args ...string) ([]byte, error) {
	return t.b.run(ctx, name, args...)
}

// cluster drives this node's Pacemaker.
func (b *Bootstrap) cluster() pacemaker.Cluster { return pacemaker.Cluster{Run: toolRunner{b}} }

// adm drives this node's DRBD.
func (b *Bootstrap) adm() drbd.Adm { return drbd.Adm{Run: toolRunner{b}} }

// path is p, an absolute path on the controller, under the bootstrap root.
func (b *Bootstrap) path(p string) string { return filepath.Join(b.Root, p) }

func (b *Bootstrap) log() *slog.Logger {
	if b.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return b.Log
}

// Run performs every step and returns what each did. It stops at the
// first step that fails, or when ctx ends.
func (b *Bootstrap) Run(ctx context.Context) ([]Result, error) {
	if b.Timeout == 0 {
		b.Timeout = 5 * time.Minute
	}
	if b.Root == "" {
		b.Root = "/"
	}
	b.joined = b.joinedPair()
	var out []Result
	for _, s := range b.steps() {
		if err := ctx.Err(); err != nil {
			return out, fmt.Errorf("step %s: %w", s.name, err)
		}
		start := time.Now()
		r, err := b.runStep(ctx, s)
		b.log().Info("bootstrap step", "step", s.name, "changed", r.Changed, "detail", r.Detail, "took", time.Since(start).Round(time.Millisecond), "err", err)
		if err != nil {
			return out, fmt.Errorf("step %s: %w", s.name, err)
		}
		out = append(out, r)
		if b.Progress != nil {
			b.Progress(r)
		}
	}
	return out, nil
}

// runStep runs one step: check, then apply unless this is a dry run; or do.
func (b *Bootstrap) runStep(ctx context.Context, s step) (Result, error) {
	r := Result{Step: s.name}
	if s.do != nil {
		var err error
		r.Changed, r.Detail, err = s.do(ctx)
		return r, err
	}
	apply, detail, err := s.check(ctx)
	r.Detail = detail
	if err != nil || apply == nil {
		return r, err
	}
	r.Changed = true
	if b.DryRun {
		return r, nil
	}
	r.Detail, err = apply(ctx)
	return r, err
}

// wait calls ready every interval until it reports true. It returns
// ready's error at once, ctx's when ctx ends first, and timedOut's (which
// says what ready saw last) once timeout has passed.
func wait(ctx context.Context, timeout, interval time.Duration, ready func() (bool, error), timedOut func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, err := ready()
		if err != nil || ok {
			return err
		}
		if time.Now().After(deadline) {
			return timedOut()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(interval):
		}
	}
}

func (b *Bootstrap) packages(ctx context.Context) (applyFunc, string, error) {
	var missing []string
	for _, p := range Packages {
		out, err := b.run(ctx, "dpkg-query", "-W", "-f=${Status}", p)
		if err != nil || !strings.HasSuffix(strings.TrimSpace(string(out)), "install ok installed") {
			missing = append(missing, p)
		}
	}
	if len(missing) == 0 {
		return nil, "all installed", nil
	}
	return func(ctx context.Context) (string, error) {
		args := append([]string{"install", "-y", "--no-install-recommends"}, missing...)
		if _, err := b.R.RunCmd(ctx, runner.Cmd{Name: "apt-get", Args: args, Env: []string{"DEBIAN_FRONTEND=noninteractive"}}); err != nil {
			return "", err
		}
		return "installed " + strings.Join(missing, " "), nil
	}, "would install " + strings.Join(missing, " "), nil
}

// secretFiles are the files the secrets go to, and the fence password
// files kept as they are on this node because the secrets file has no
// password for them (a secrets file from before fence passwords).
func (b *Bootstrap) secretFiles() (files []SecretFile, kept []string, err error) {
	files = []SecretFile{
		{Path: "etc/corosync/authkey", Mode: 0o400, Content: b.Secrets.Authkey()},
		{Path: strings.TrimPrefix(b.Cfg.RabbitMQ.CookieFile, "/"), Mode: 0o400, Content: []byte(b.Secrets.ErlangCookie), Owner: "rabbitmq"},
		{Path: strings.TrimPrefix(b.Cfg.MySQL.CredentialsFile, "/"), Mode: 0o600, Content: b.Secrets.MySQLOptionFile()},
	}
	fence, err := fencePasswordFiles(b.Cfg, b.Secrets)
	if err != nil {
		return nil, nil, err
	}
	var problems []error
	for _, f := range fence {
		if f.Password != "" {
			// Read by the fence agents (password_script=/bin/cat FILE, or
			// the compute controller), which drop the final newline.
			files = append(files, SecretFile{Path: strings.TrimPrefix(f.Path, "/"), Mode: 0o600, Content: []byte(f.Password + "\n")})
			continue
		}
		st, err := os.Stat(b.path(f.Path))
		switch {
		case err != nil:
			problems = append(problems, fmt.Errorf("%s (the password of %s) does not exist and %s has no %s: add it there (bootstrap installs it, mode 0600) or create the file", f.Path, f.For, secretsName(b.Secrets), f.keyList()))
		case st.Mode().Perm()&0o077 != 0:
			problems = append(problems, fmt.Errorf("%s (the password of %s): mode %v: readable by group or others (chmod 600 %s, or add %s to %s and bootstrap installs it)", f.Path, f.For, st.Mode().Perm(), f.Path, f.keyList(), secretsName(b.Secrets)))
		default:
			kept = append(kept, f.Path)
		}
	}
	return files, kept, errors.Join(problems...)
}

// fencePasswordCount is how many of files are fence passwords: those after
// the authkey, the cookie and the MySQL option file.
func fencePasswordCount(files []SecretFile) int { return max(len(files)-3, 0) }

func (b *Bootstrap) secrets(ctx context.Context) (applyFunc, string, error) {
	files, kept, err := b.secretFiles()
	if err != nil {
		return nil, "", err
	}
	var stale []SecretFile
	var names []string
	for _, f := range files {
		p := b.path(f.Path)
		old, err := os.ReadFile(p)
		st, serr := os.Stat(p)
		if err == nil && serr == nil && bytes.Equal(old, f.Content) && st.Mode().Perm() == f.Mode {
			continue
		}
		stale = append(stale, f)
		names = append(names, "/"+f.Path)
	}
	keptNote := ""
	if len(kept) > 0 {
		keptNote = "; kept " + strings.Join(kept, ", ") + " (no password for it in the secrets file)"
	}
	if len(stale) == 0 {
		what := "authkey, Erlang cookie and MySQL credentials"
		if n := fencePasswordCount(files); n > 0 {
			what = fmt.Sprintf("authkey, Erlang cookie, MySQL credentials and %d fence password(s)", n)
		}
		return nil, what + " in place" + keptNote, nil
	}
	return func(ctx context.Context) (string, error) {
		for _, f := range stale {
			p := b.path(f.Path)
			if _, err := atomicfile.WriteIfChanged(p, f.Content, f.Mode); err != nil {
				return "", err
			}
			if f.Owner != "" {
				if _, err := b.run(ctx, "chown", f.Owner+":"+f.Owner, p); err != nil {
					return "", err
				}
			}
		}
		return "installed " + strings.Join(names, ", ") + keptNote, nil
	}, "would install " + strings.Join(names, ", ") + keptNote, nil
}

// InstallSecrets runs the secrets step alone (`haconf secrets install`,
// which the playbook runs after placing the secrets file).
func (b *Bootstrap) InstallSecrets(ctx context.Context) (Result, error) {
	if b.Root == "" {
		b.Root = "/"
	}
	return b.runStep(ctx, step{name: "secrets", check: b.secrets})
}

// render renders this node's files, once per run: the files step writes
// them, the cib step pushes the CIB among them and announces a digest of
// the resource agents among them.
func (b *Bootstrap) render() ([]templates.File, error) {
	if b.rendered != nil {
		return b.rendered, nil
	}
	files, err := templates.Render(b.Cfg, b.Node, templates.Options{DRBDVersion: b.DRBDVersion})
	if err != nil {
		return nil, err
	}
	b.rendered = files
	return files, nil
}

func (b *Bootstrap) files(ctx context.Context) (applyFunc, string, error) {
	files, err := b.render()
	if err != nil {
		return nil, "", err
	}
	plan, err := templates.Plan(b.Root, files)
	if err != nil {
		return nil, "", err
	}
	var changed []string
	for _, c := range plan {
		if c.Action != atomicfile.Unchanged {
			changed = append(changed, "/"+c.File.Path)
		}
	}
	if len(changed) == 0 {
		return nil, fmt.Sprintf("%d files up to date", len(files)), nil
	}
	return func(ctx context.Context) (string, error) {
		if _, err := templates.Write(b.Root, files); err != nil {
			return "", err
		}
		return "wrote " + strings.Join(changed, ", "), nil
	}, "would write " + strings.Join(changed, ", "), nil
}

// procDRBD is /proc/drbd, the DRBD module's report.
const procDRBD = "/proc/drbd"

// drbdState reads this node's state of the configured resource; up is
// false while the module is not loaded or the resource is not configured.
func (b *Bootstrap) drbdState(ctx context.Context) (r drbd.Resource, up bool, err error) {
	proc, err := os.ReadFile(b.path(procDRBD))
	if errors.Is(err, fs.ErrNotExist) {
		return drbd.Resource{}, false, nil
	}
	if err != nil {
		return drbd.Resource{}, false, fmt.Errorf("DRBD is not loaded: %w", err)
	}
	return b.adm().State(ctx, proc, b.Cfg.DRBD.Resource, b.Cfg.DRBD.Minor())
}

func (b *Bootstrap) drbdUp(ctx context.Context) (applyFunc, string, error) {
	res := b.Cfg.DRBD.Resource
	st, up, err := b.drbdState(ctx)
	if err != nil {
		return nil, "", err
	}
	if up {
		return nil, fmt.Sprintf("%s up: %s %s/%s %s", res, st.Connection, st.Disk, st.PeerDisk, st.Role), nil
	}
	if b.joined != "" {
		return nil, res + " down: Pacemaker brings it up (" + b.joined + ")", nil
	}
	var did []string
	// blkid sees DRBD's internal metadata as TYPE=drbd, even after a crash
	// left it unclean (when dump-md refuses to read it).
	sig, _ := b.run(ctx, "blkid", "-p", "-o", "value", "-s", "TYPE", b.Cfg.DRBD.Disk)
	createMD := false
	switch t := strings.TrimSpace(string(sig)); t {
	case "drbd":
	case "":
		createMD = true
		did = append(did, "created metadata")
	default:
		return nil, "", fmt.Errorf("%s holds a %s signature, not DRBD metadata: refusing to overwrite it (wipe it yourself if it is really unused)", b.Cfg.DRBD.Disk, t)
	}
	did = append(did, "brought "+res+" up")
	return func(ctx context.Context) (string, error) {
		if _, err := os.Stat(b.path(procDRBD)); err != nil {
			if _, err := b.run(ctx, "modprobe", "drbd"); err != nil {
				return "", fmt.Errorf("load the DRBD module: %w", err)
			}
		}
		if createMD {
			if err := b.adm().CreateMD(ctx, b.R, res); err != nil {
				return "", err
			}
		}
		if err := b.adm().Up(ctx, res); err != nil {
			return "", err
		}
		return strings.Join(did, ", "), nil
	}, "would have " + strings.Join(did, ", "), nil
}

// joinedPair says why this node belongs to a bootstrapped pair, or ""
// when it does not yet: Pacemaker's copy of the CIB on this node
// configures haconf's DRBD clone. From then on DRBD's roles, the
// filesystem and MariaDB are Pacemaker's (the resource agents bring DRBD
// up, promote, mount and start): bootstrap never promotes, formats or
// starts MariaDB on such a node, whatever state the peer is in - a node
// restarting after a crash may hold the only good copy of the data, or
// an Outdated one that must wait.
func (b *Bootstrap) joinedPair() string {
	cib, err := os.ReadFile(b.path(pacemaker.CIBFile))
	if err != nil {
		return ""
	}
	clone := pacemaker.NamesFor(b.Cfg.DRBD.Resource).Clone()
	if !pacemaker.HasResource(cib, clone) {
		return ""
	}
	return "the pair is bootstrapped: " + pacemaker.CIBFile + " configures " + clone
}

// waitDRBD waits until ok(state).
func (b *Bootstrap) waitDRBD(ctx context.Context, what string, ok func(drbd.Resource) bool) (drbd.Resource, error) {
	var st drbd.Resource
	err := wait(ctx, b.Timeout, 500*time.Millisecond, func() (bool, error) {
		var up bool
		var err error
		st, up, err = b.drbdState(ctx)
		return up && ok(st), err
	}, func() error {
		return fmt.Errorf("timed out after %v waiting for %s (now %s %s/%s)", b.Timeout, what, st.Connection, st.Disk, st.PeerDisk)
	})
	return st, err
}

func (b *Bootstrap) initialSync(ctx context.Context) (applyFunc, string, error) {
	if b.joined != "" {
		return nil, "done when the pair was made (" + b.joined + ")", nil
	}
	startSync := func(ctx context.Context) (string, error) {
		if err := b.adm().Primary(ctx, b.Cfg.DRBD.Resource, true); err != nil {
			return "", err
		}
		return "started the initial sync to " + b.peerName(), nil
	}
	if b.DryRun {
		// Nothing to look at yet: the peer connects once both nodes ran
		// the drbd step.
		if b.First() {
			return startSync, "would wait for the peer, then start the initial sync from this node if both disks are Inconsistent", nil
		}
		return nil, "the first node starts the initial sync", nil
	}
	st, err := b.waitDRBD(ctx, "the DRBD peer to connect", func(r drbd.Resource) bool { return r.Connection == drbd.ConnConnected })
	if err != nil {
		return nil, "", err
	}
	if st.Disk != drbd.DiskInconsistent || st.PeerDisk != drbd.DiskInconsistent {
		return nil, fmt.Sprintf("data already in sync or syncing (%s/%s)", st.Disk, st.PeerDisk), nil
	}
	if !b.First() {
		// The first node starts the sync; wait for it.
		_, err := b.waitDRBD(ctx, "the initial sync to start", func(r drbd.Resource) bool { return r.Disk != drbd.DiskInconsistent || r.Sync != nil })
		return nil, "initial sync started by " + b.Cfg.Nodes[0].Name, err
	}
	return startSync, "would start the initial sync to " + b.peerName(), nil
}

func (b *Bootstrap) peerName() string { p, _ := b.Cfg.Peer(b.Node); return p.Name }

// datadir makes the filesystem and MariaDB's datadir on the DRBD volume, on
// the first node, once.
func (b *Bootstrap) datadir(ctx context.Context) (bool, string, error) {
	if !b.First() {
		changed, err := b.placeholderDatadir(ctx)
		return changed, "the first node prepares the DRBD volume", err
	}
	if b.joined != "" {
		changed, err := b.placeholderDatadir(ctx)
		return changed, "the volume holds the data: Pacemaker mounts it and starts MariaDB (" + b.joined + ")", err
	}
	dev := b.Cfg.DRBD.Device
	if b.DryRun {
		return true, "would make a " + b.Cfg.MySQL.Filesystem + " filesystem on " + dev + " if it has none and initialize MariaDB's datadir in it", nil
	}
	if b.pacemakerRunning(ctx) {
		return false, "the DRBD volume is managed by Pacemaker", nil
	}
	st, _, err := b.drbdState(ctx)
	if err != nil {
		return false, "", err
	}
	var did []string
	if st.Role != drbd.RolePrimary {
		// The pair has no CIB yet (a first bootstrap that stopped before
		// the cib step): promote to check the volume, unless the peer is
		// Primary (then it holds the data and this node must not touch it).
		if st.PeerRole == drbd.RolePrimary {
			return false, "the peer holds the DRBD volume", nil
		}
		if err := b.adm().Primary(ctx, b.Cfg.DRBD.Resource, false); err != nil {
			return false, "", err
		}
	}
	fsType, _ := b.run(ctx, "blkid", "-o", "value", "-s", "TYPE", dev)
	if len(bytes.TrimSpace(fsType)) == 0 {
		if _, err := b.run(ctx, "mkfs."+b.Cfg.MySQL.Filesystem, "-q", dev); err != nil {
			return false, "", err
		}
		did = append(did, "made "+b.Cfg.MySQL.Filesystem+" on "+dev)
	}
	mnt := b.path(b.Cfg.MySQL.MountPoint)
	if err := os.MkdirAll(mnt, 0o755); err != nil {
		return false, "", err
	}
	if _, err := b.placeholderDatadir(ctx); err != nil {
		return false, "", err
	}
	if _, err := b.run(ctx, "mount", dev, mnt); err != nil {
		return false, "", err
	}
	defer b.run(context.WithoutCancel(ctx), "umount", mnt)
	datadir := b.Cfg.MySQL.Datadir()
	if _, err := os.Stat(b.path(filepath.Join(datadir, "mysql"))); err != nil {
		if err := os.MkdirAll(b.path(datadir), 0o750); err != nil {
			return false, "", err
		}
		if _, err := b.run(ctx, "chown", "mysql:mysql", b.path(datadir)); err != nil {
			return false, "", err
		}
		if _, err := b.run(ctx, "mariadb-install-db", "--user=mysql", "--datadir="+b.path(datadir), "--skip-test-db", "--auth-root-authentication-method=socket"); err != nil {
			return false, "", err
		}
		did = append(did, "initialized MariaDB's datadir "+datadir)
	}
	if err := b.createUsers(ctx, b.path(datadir)); err != nil {
		return false, "", err
	}
	if b.Cfg.RabbitMQ.Mode == rabbitmq.ModeActivePassive {
		dir := filepath.Join(b.Cfg.MySQL.MountPoint, "rabbitmq")
		if _, err := os.Stat(b.path(dir)); err != nil {
			os.MkdirAll(b.path(dir), 0o750)
			b.run(ctx, "chown", "rabbitmq:rabbitmq", b.path(dir))
			did = append(did, "created "+dir)
		}
	}
	if len(did) == 0 {
		return false, "filesystem and datadir already on " + dev, nil
	}
	return true, strings.Join(did, ", "), nil
}

// Where the mysql agent's MariaDB writes: its error log is
// /var/log/mysql/error.log, and it fails to start without the directory;
// its socket and pid file are in /run/mysqld.
const (
	mysqlLogDir = "/var/log/mysql"
	mysqlRunDir = "/run/mysqld"
)

// placeholderDatadir creates the datadir path under the unmounted mount
// point: the mysql agent's probe on the standby checks that the datadir
// exists, and fails as "not installed" (which bans MariaDB from that node)
// when it does not.
func (b *Bootstrap) placeholderDatadir(ctx context.Context) (bool, error) {
	if !b.DryRun {
		for _, d := range []string{mysqlLogDir, mysqlRunDir} {
			if _, err := os.Stat(b.path(d)); err != nil {
				if err := os.MkdirAll(b.path(d), 0o750); err != nil {
					return false, err
				}
				if _, err := b.run(ctx, "chown", "mysql:mysql", b.path(d)); err != nil {
					return false, err
				}
			}
		}
	}
	if out, _ := b.run(ctx, "findmnt", "-n", b.path(b.Cfg.MySQL.MountPoint)); len(bytes.TrimSpace(out)) > 0 {
		return false, nil // mounted: the real datadir is there
	}
	d := b.path(b.Cfg.MySQL.Datadir())
	if _, err := os.Stat(d); err == nil || b.DryRun {
		return false, nil
	}
	if err := os.MkdirAll(d, 0o750); err != nil {
		return false, err
	}
	_, err := b.run(ctx, "chown", "mysql:mysql", d)
	return true, err
}

// createUsers starts MariaDB privately (no network) on datadir (a path
// under the root) and creates haconf's own user from the secrets. The
// password goes in on stdin, never in argv.
func (b *Bootstrap) createUsers(ctx context.Context, datadir string) error {
	// MariaDB runs as mysql: its socket goes where mysql may write.
	run := b.path(mysqlRunDir)
	if err := os.MkdirAll(run, 0o755); err != nil {
		return err
	}
	if _, err := b.run(ctx, "chown", "mysql:mysql", run); err != nil {
		return err
	}
	sock := filepath.Join(run, "haconf-bootstrap.sock")
	pidf := filepath.Join(run, "haconf-bootstrap.pid")
	logf := b.path("/var/log/haconf-bootstrap-mysqld.log")
	if _, err := b.R.StartDaemon("mariadbd", []string{"--user=mysql", "--datadir=" + datadir, "--skip-networking", "--socket=" + sock, "--pid-file=" + pidf, "--skip-log-bin"}, logf); err != nil {
		return err
	}
	defer func() {
		b.run(context.WithoutCancel(ctx), "mariadb-admin", "--socket="+sock, "shutdown")
	}()
	err := wait(ctx, 60*time.Second, 300*time.Millisecond, func() (bool, error) {
		_, err := b.run(ctx, "mariadb-admin", "--socket="+sock, "ping")
		return err == nil, nil
	}, func() error {
		return errors.New("MariaDB did not start on the new datadir (see " + logf + ")")
	})
	if err != nil {
		return err
	}
	user := b.Secrets.MySQLUser
	sql := fmt.Sprintf("CREATE USER IF NOT EXISTS '%s'@'%%' IDENTIFIED BY '%s';\nALTER USER '%s'@'%%' IDENTIFIED BY '%s';\nGRANT ALL PRIVILEGES ON *.* TO '%s'@'%%' WITH GRANT OPTION;\nFLUSH PRIVILEGES;\n",
		sqlQuote(user), sqlQuote(b.Secrets.MySQLPassword), sqlQuote(user), sqlQuote(b.Secrets.MySQLPassword), sqlQuote(user))
	_, err = b.R.RunCmd(ctx, runner.Cmd{Name: "mariadb", Args: []string{"--socket=" + sock, "--batch"}, Stdin: []byte(sql)})
	if err != nil {
		return errors.New("creating haconf's MariaDB user failed (the statement is not shown: it holds the password)")
	}
	return nil
}

func sqlQuote(s string) string { return strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) }

// systemd reports whether this machine runs systemd.
func (b *Bootstrap) systemd() bool {
	_, err := os.Stat(b.path("/run/systemd/system"))
	return err == nil
}

func (b *Bootstrap) clusterStack(ctx context.Context) (bool, string, error) {
	// Hand DRBD to Pacemaker: it promotes where the services should run.
	if !b.DryRun && b.joined == "" {
		if st, up, _ := b.drbdState(ctx); up && st.Role == drbd.RolePrimary && !b.pacemakerRunning(ctx) {
			if err := b.adm().Secondary(ctx, b.Cfg.DRBD.Resource); err != nil {
				return false, "", err
			}
		}
	}
	var did []string
	for _, svc := range []struct{ name, bin string }{{"corosync", pacemaker.CorosyncDaemon}, {"pacemaker", pacemaker.PacemakerDaemon}} {
		if _, err := b.run(ctx, "pidof", svc.bin); err == nil {
			continue
		}
		did = append(did, "started "+svc.name)
		if b.DryRun {
			continue
		}
		var err error
		switch {
		case b.systemd():
			_, err = b.run(ctx, "systemctl", "enable", "--now", svc.name)
		case svc.bin == pacemaker.CorosyncDaemon:
			// In the foreground under StartDaemon: a forking corosync would
			// keep haconf's stdout and stderr, and die of SIGPIPE later.
			os.MkdirAll(b.path("/var/log/corosync"), 0o755)
			var pid int
			pid, err = b.R.StartDaemon(pacemaker.CorosyncDaemon, []string{"-f"}, b.path("/var/log/corosync/corosync.out"))
			if err == nil {
				// Membership must outlive any memory pressure: if the OOM
				// killer takes corosync, the peer fences this node.
				_ = os.WriteFile(b.path(fmt.Sprintf("/proc/%d/oom_score_adj", pid)), []byte("-1000"), 0o644)
			}
		default:
			os.MkdirAll(b.path("/var/log/pacemaker"), 0o755)
			_, err = b.R.StartDaemon(pacemaker.PacemakerDaemon, nil, b.path("/var/log/pacemaker/pacemakerd.out"))
		}
		if err != nil {
			return false, "", err
		}
	}
	if b.DryRun {
		if len(did) == 0 {
			return false, "corosync and pacemaker running", nil
		}
		return true, "would have " + strings.Join(did, ", "), nil
	}
	// Wait for both nodes to be members and a DC to be elected. A node
	// rejoining a bootstrapped pair waits for itself only: its peer may be
	// down (fenced, or not started yet), and Pacemaker decides from there.
	want := 2
	if b.joined != "" {
		want = 1
	}
	online := 0
	err := wait(ctx, b.Timeout, time.Second, func() (bool, error) {
		mon, err := b.cluster().Status(ctx)
		if err != nil {
			return false, nil
		}
		n, ok := mon.Node(b.Node)
		online = onlineCount(mon)
		return mon.DC != "" && ok && n.Online && online >= want, nil
	}, func() error {
		if want == 1 {
			return fmt.Errorf("timed out after %v waiting for %s to join the cluster", b.Timeout, b.Node)
		}
		return fmt.Errorf("timed out after %v waiting for both nodes to join the cluster", b.Timeout)
	})
	if err != nil {
		return false, "", err
	}
	members := "both nodes online"
	if online < 2 {
		members = b.Node + " online, " + b.peerName() + " not (Pacemaker decides what runs where)"
	}
	if len(did) == 0 {
		return false, "corosync and pacemaker running, " + members, nil
	}
	return true, strings.Join(did, ", ") + "; " + members, nil
}

func (b *Bootstrap) pacemakerRunning(ctx context.Context) bool {
	_, err := b.run(ctx, "pidof", "pacemaker-controld")
	return err == nil
}

func onlineCount(m pacemaker.CrmMon) int {
	n := 0
	for _, x := range m.Nodes {
		if x.Online {
			n++
		}
	}
	return n
}

// AgentsAttribute is the permanent node attribute in which each node
// says which of haconf's resource agents it has installed (a digest of
// the wrappers): the first node pushes a CIB only once its peer has them,
// or Pacemaker would probe the peer, find "not installed", and believe
// the resource stopped there - while it still runs.
const AgentsAttribute = "haconf-agents"

// agentsDigest identifies the resource agent wrappers this node renders.
func (b *Bootstrap) agentsDigest() (string, error) {
	files, err := b.render()
	if err != nil {
		return "", err
	}
	h := sha256.New()
	for _, f := range files {
		if strings.HasPrefix(f.Path, templates.OCFDir+"/") {
			fmt.Fprintf(h, "%s\x00%o\x00%s\x00", f.Path, f.Mode, f.Content)
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// renderedCIB is the CIB among this node's rendered files.
func (b *Bootstrap) renderedCIB() ([]byte, error) {
	files, err := b.render()
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		if f.Path == templates.CIBPath {
			return f.Content, nil
		}
	}
	return nil, fmt.Errorf("/%s is not among the rendered files", templates.CIBPath)
}

// waitPeerAgents waits until the peer announces the same agents.
func (b *Bootstrap) waitPeerAgents(ctx context.Context, digest string) error {
	peer := b.peerName()
	var have string
	return wait(ctx, b.Timeout, 2*time.Second, func() (bool, error) {
		var err error
		have, err = b.cluster().NodeAttribute(ctx, peer, AgentsAttribute, pacemaker.Forever)
		return err == nil && have == digest, nil
	}, func() error {
		if have == "" {
			have = "none"
		}
		return fmt.Errorf("%s has not installed this version of haconf's resource agents (its %s is %s, this node's %s) after %v: run haconf bootstrap on %s too, before the CIB that uses them can be pushed", peer, AgentsAttribute, have, digest, b.Timeout, peer)
	})
}

func (b *Bootstrap) cib(ctx context.Context) (bool, string, error) {
	if b.DryRun {
		if !b.First() {
			return false, "the first node pushes the CIB", nil
		}
		return true, "would replace the CIB configuration section with /" + templates.CIBPath + " unless it already matches", nil
	}
	digest, err := b.agentsDigest()
	if err != nil {
		return false, "", err
	}
	pm := b.cluster()
	// Set only when it differs: an unchanged re-run leaves the CIB epoch alone.
	if have, err := pm.NodeAttribute(ctx, b.Node, AgentsAttribute, pacemaker.Forever); err != nil || have != digest {
		if err := pm.SetNodeAttribute(ctx, b.Node, AgentsAttribute, pacemaker.Forever, digest); err != nil {
			return false, "", err
		}
	}
	if !b.First() {
		return false, "the first node pushes the CIB", nil
	}
	rendered, err := b.renderedCIB()
	if err != nil {
		return false, "", err
	}
	live, err := pm.Query(ctx, pacemaker.ScopeConfiguration)
	if err != nil {
		return false, "", err
	}
	updates := pacemaker.ConfigurationUpdates(rendered, live)
	if len(updates) == 0 {
		return false, "CIB configuration already matches", nil
	}
	if err := b.waitPeerAgents(ctx, digest); err != nil {
		return false, "", err
	}
	var scopes []string
	for _, u := range updates {
		f := b.path("/etc/haconf/.cib-" + u.Scope + ".xml")
		if err := atomicfile.Write(f, u.XML, 0o600); err != nil {
			return false, "", err
		}
		if err := pm.ApplyUpdate(ctx, u, f); err != nil {
			return false, "", err
		}
		os.Remove(f)
		scopes = append(scopes, u.Scope)
	}
	// A pushed nodes section (the whole configuration on a fresh cluster)
	// drops the permanent node attributes: announce both nodes' agents
	// again (the peer's equal this node's: waitPeerAgents saw it), or the
	// next bootstrap of this node, after a crash, waits for the peer's
	// attribute in vain.
	for _, n := range []string{b.Node, b.peerName()} {
		if err := pm.SetNodeAttribute(ctx, n, AgentsAttribute, pacemaker.Forever, digest); err != nil {
			return false, "", err
		}
	}
	return true, "pushed the CIB sections " + strings.Join(scopes, ", "), nil
}

// broker checks this node's RabbitMQ (see Bootstrap.Broker).
func (b *Bootstrap) broker(ctx context.Context) error {
	if b.Broker != nil {
		return b.Broker(ctx)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return rabbitmq.Handshake(ctx, net.JoinHostPort("127.0.0.1", rabbitmq.DefaultPort))
}

// resources only waits: until every resource runs, and this node's
// RabbitMQ answers.
func (b *Bootstrap) resources(ctx context.Context) (applyFunc, string, error) {
	if b.DryRun {
		return nil, "would wait until every resource has started", nil
	}
	if b.NoWait {
		return nil, "not waiting for resources (--wait=false)", nil
	}
	var stopped []string
	n := 0
	err := wait(ctx, b.Timeout, 2*time.Second, func() (bool, error) {
		mon, err := b.cluster().Status(ctx)
		if err != nil {
			stopped = []string{"(no cluster status: " + err.Error() + ")"}
			return false, nil
		}
		if n = len(mon.Resources); n == 0 {
			stopped = []string{"(no resources in the CIB yet)"}
			return false, nil
		}
		stopped = notStarted(mon)
		if len(stopped) == 0 && b.Cfg.RabbitMQ.Mode != rabbitmq.ModeActivePassive {
			if err := b.broker(ctx); err != nil {
				stopped = []string{"rabbitmq (booting on " + b.Node + ": " + err.Error() + ")"}
			}
		}
		return len(stopped) == 0, nil
	}, func() error {
		return fmt.Errorf("timed out after %v; not running: %s", b.Timeout, strings.Join(stopped, ", "))
	})
	if err != nil {
		return nil, "", err
	}
	return nil, fmt.Sprintf("%d resource instances running", n), nil
}

// notStarted lists resources that should run and do not (fence devices run
// on the other node, so each needs one instance; clones need both).
func notStarted(m pacemaker.CrmMon) []string {
	var out []string
	for _, r := range m.Resources {
		// Starting, Stopping, Promoting... are actions still in flight: a
		// start that later fails must not have been reported as running.
		settled := r.Role == "Started" || r.Role == "Promoted" || r.Role == "Unpromoted"
		if !settled && r.Role != "Stopped" && !r.Failed {
			out = append(out, r.ID+" ("+strings.ToLower(r.Role)+")")
			continue
		}
		if r.Role == "Stopped" || r.Failed {
			if strings.HasPrefix(r.ID, "fence-") && len(m.Nodes) == 2 && onlineCount(m) < 2 {
				continue
			}
			out = append(out, r.ID)
		}
	}
	running := map[string]bool{}
	for _, r := range m.Resources {
		if r.Role != "Stopped" && !r.Failed {
			running[r.ID] = true
		}
	}
	for _, f := range m.FailedActions {
		// A failure in the history of a resource that runs again (a
		// monitor that timed out once, then recovered) does not block.
		if running[opResource(f.OpKey)] {
			continue
		}
		out = append(out, fmt.Sprintf("%s failed (%s)", f.OpKey, f.ExitReason))
	}
	return out
}

// opResource returns the resource of an operation key (RSC_TASK_INTERVAL).
func opResource(opKey string) string {
	parts := strings.Split(opKey, "_")
	if len(parts) < 3 {
		return opKey
	}
	return strings.Join(parts[:len(parts)-2], "_")
}

// watchdog enables and starts haconf's watchdog under systemd (the unit
// the files step rendered). Without systemd the node's own init must run
// `haconf watchdog -c FILE` (the lab starts it itself).
func (b *Bootstrap) watchdog(ctx context.Context) (applyFunc, string, error) {
	const unit = "haconf-watchdog"
	if !b.systemd() {
		return nil, "no systemd here: run haconf watchdog -c " + templates.DefaultConfigPath + " from this machine's init", nil
	}
	enabled, _ := b.run(ctx, "systemctl", "is-enabled", unit)
	active, _ := b.run(ctx, "systemctl", "is-active", unit)
	if strings.TrimSpace(string(enabled)) == "enabled" && strings.TrimSpace(string(active)) == "active" {
		return nil, unit + " enabled and running", nil
	}
	return func(ctx context.Context) (string, error) {
		// The unit file is new or changed (files step): systemd must reread it.
		if _, err := b.run(ctx, "systemctl", "daemon-reload"); err != nil {
			return "", err
		}
		if _, err := b.run(ctx, "systemctl", "enable", "--now", unit); err != nil {
			return "", err
		}
		return "enabled and started " + unit, nil
	}, "would enable and start " + unit, nil
}
