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
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/haconf/haconf/drbd"
	"github.com/haconf/haconf/internal/atomicfile"
	"github.com/haconf/haconf/internal/config"
	"github.com/haconf/haconf/internal/runner"
	"github.com/haconf/haconf/pacemaker"
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
	Root        string // "/" in production; files are rendered under it
	// Progress, when set, hears each result as soon as its step ends.
	Progress func(Result)
	// Timeout bounds each wait (peer connection, membership, resources).
	Timeout time.Duration
	// NoWait skips waiting for every resource to run (a node rejoining
	// after a crash only needs its own part up).
	NoWait bool
}

// Steps in order.
var Steps = []string{"packages", "secrets", "files", "rabbitmq", "drbd", "initial-sync", "datadir", "cluster-stack", "cib", "resources", "watchdog"}

// First reports whether this node is the one that does the one-time work
// (initial sync, filesystem, datadir, CIB): nodes[0].
func (b *Bootstrap) First() bool { return b.Cfg.Nodes[0].Name == b.Node }

func (b *Bootstrap) run(ctx context.Context, name string, args ...string) ([]byte, error) {
	return b.R.RunCmd(ctx, runner.Cmd{Name: name, Args: args})
}

func (b *Bootstrap) log() *slog.Logger {
	if b.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return b.Log
}

// Run performs every step and returns what each did.
func (b *Bootstrap) Run(ctx context.Context) ([]Result, error) {
	if b.Timeout == 0 {
		b.Timeout = 5 * time.Minute
	}
	if b.Root == "" {
		b.Root = "/"
	}
	funcs := map[string]func(context.Context) (bool, string, error){
		"packages": b.packages, "secrets": b.secrets, "files": b.files, "rabbitmq": b.rabbitmq, "drbd": b.drbdUp,
		"initial-sync": b.initialSync, "datadir": b.datadir, "cluster-stack": b.clusterStack,
		"cib": b.cib, "resources": b.resources, "watchdog": b.watchdog,
	}
	var out []Result
	for _, s := range Steps {
		start := time.Now()
		changed, detail, err := funcs[s](ctx)
		r := Result{Step: s, Changed: changed, Detail: detail}
		b.log().Info("bootstrap step", "step", s, "changed", changed, "detail", detail, "took", time.Since(start).Round(time.Millisecond), "err", err)
		if err != nil {
			return out, fmt.Errorf("step %s: %w", s, err)
		}
		out = append(out, r)
		if b.Progress != nil {
			b.Progress(r)
		}
	}
	return out, nil
}

func (b *Bootstrap) packages(ctx context.Context) (bool, string, error) {
	var missing []string
	for _, p := range Packages {
		out, err := b.run(ctx, "dpkg-query", "-W", "-f=${Status}", p)
		if err != nil || !strings.HasSuffix(strings.TrimSpace(string(out)), "install ok installed") {
			missing = append(missing, p)
		}
	}
	if len(missing) == 0 {
		return false, "all installed", nil
	}
	if b.DryRun {
		return true, "would install " + strings.Join(missing, " "), nil
	}
	args := append([]string{"install", "-y", "--no-install-recommends"}, missing...)
	if _, err := b.R.RunCmd(ctx, runner.Cmd{Name: "apt-get", Args: args, Env: []string{"DEBIAN_FRONTEND=noninteractive"}}); err != nil {
		return false, "", err
	}
	return true, "installed " + strings.Join(missing, " "), nil
}

// secretFiles are the files the secrets go to.
func (b *Bootstrap) secretFiles() []SecretFile {
	return []SecretFile{
		{Path: "etc/corosync/authkey", Mode: 0o400, Content: b.Secrets.Authkey()},
		{Path: strings.TrimPrefix(b.Cfg.RabbitMQ.CookieFile, "/"), Mode: 0o400, Content: []byte(b.Secrets.ErlangCookie), Owner: "rabbitmq"},
		{Path: strings.TrimPrefix(b.Cfg.MySQL.CredentialsFile, "/"), Mode: 0o600, Content: b.Secrets.MySQLOptionFile()},
	}
}

func (b *Bootstrap) secrets(ctx context.Context) (bool, string, error) {
	var changed []string
	for _, f := range b.secretFiles() {
		p := filepath.Join(b.Root, f.Path)
		old, err := os.ReadFile(p)
		st, serr := os.Stat(p)
		if err == nil && serr == nil && bytes.Equal(old, f.Content) && st.Mode().Perm() == f.Mode {
			continue
		}
		changed = append(changed, "/"+f.Path)
		if b.DryRun {
			continue
		}
		if _, err := atomicfile.WriteIfChanged(p, f.Content, f.Mode); err != nil {
			return false, "", err
		}
		if f.Owner != "" {
			if _, err := b.run(ctx, "chown", f.Owner+":"+f.Owner, p); err != nil {
				return false, "", err
			}
		}
	}
	if len(changed) == 0 {
		return false, "authkey, Erlang cookie and MySQL credentials in place", nil
	}
	verb := "installed "
	if b.DryRun {
		verb = "would install "
	}
	return true, verb + strings.Join(changed, ", "), nil
}

func (b *Bootstrap) files(ctx context.Context) (bool, string, error) {
	files, err := templates.Render(b.Cfg, b.Node, templates.Options{DRBDVersion: b.DRBDVersion})
	if err != nil {
		return false, "", err
	}
	var plan []templates.Change
	if b.DryRun {
		plan, err = templates.Plan(b.Root, files)
	} else {
		plan, err = templates.Write(b.Root, files)
	}
	if err != nil {
		return false, "", err
	}
	var changed []string
	for _, c := range plan {
		if c.Action != atomicfile.Unchanged {
			changed = append(changed, "/"+c.File.Path)
		}
	}
	if len(changed) == 0 {
		return false, fmt.Sprintf("%d files up to date", len(files)), nil
	}
	verb := "wrote "
	if b.DryRun {
		verb = "would write "
	}
	return true, verb + strings.Join(changed, ", "), nil
}

// drbdState reads this node's state of the configured resource; up is
// false while the module is not loaded or the resource is not configured.
func (b *Bootstrap) drbdState(ctx context.Context) (r drbd.Resource, up bool, err error) {
	if _, err := os.Stat("/proc/drbd"); errors.Is(err, fs.ErrNotExist) {
		return drbd.Resource{}, false, nil
	}
	n := &drbd.Node{Name: b.Node, Run: drbdRunner{b}, Config: b.Cfg.DRBD}
	r, err = n.State(ctx, b.Cfg.DRBD.Resource)
	if errors.Is(err, drbd.ErrUnknownResource) {
		return r, false, nil
	}
	return r, err == nil, err
}

// drbdRunner lets package drbd run its commands through the bootstrap runner.
type drbdRunner struct{ b *Bootstrap }

func (d drbdRunner) Run(ctx context.Context, name string, args ...string) ([]byte, error) {
	return d.b.run(ctx, name, args...)
}

func (b *Bootstrap) drbdUp(ctx context.Context) (bool, string, error) {
	res := b.Cfg.DRBD.Resource
	if _, err := os.Stat("/proc/drbd"); err != nil && !b.DryRun {
		if _, err := b.run(ctx, "modprobe", "drbd"); err != nil {
			return false, "", fmt.Errorf("load the DRBD module: %w", err)
		}
	}
	st, up, err := b.drbdState(ctx)
	if err != nil {
		return false, "", err
	}
	if up {
		return false, fmt.Sprintf("%s up: %s %s/%s %s", res, st.Connection, st.Disk, st.PeerDisk, st.Role), nil
	}
	var did []string
	// blkid sees DRBD's internal metadata as TYPE=drbd, even after a crash
	// left it unclean (when dump-md refuses to read it).
	sig, _ := b.run(ctx, "blkid", "-p", "-o", "value", "-s", "TYPE", b.Cfg.DRBD.Disk)
	switch t := strings.TrimSpace(string(sig)); t {
	case "drbd":
	case "":
		did = append(did, "created metadata")
		if !b.DryRun {
			if _, err := b.R.RunCmd(ctx, runner.Cmd{Name: "drbdadm", Args: []string{"create-md", "--force", res}, Stdin: []byte("yes\n")}); err != nil {
				return false, "", err
			}
		}
	default:
		return false, "", fmt.Errorf("%s holds a %s signature, not DRBD metadata: refusing to overwrite it (wipe it yourself if it is really unused)", b.Cfg.DRBD.Disk, t)
	}
	did = append(did, "brought "+res+" up")
	if !b.DryRun {
		if _, err := b.run(ctx, "drbdadm", "up", res); err != nil {
			return false, "", err
		}
	}
	return true, joinDid(b.DryRun, did), nil
}

func joinDid(dry bool, did []string) string {
	s := strings.Join(did, ", ")
	if dry {
		return "would have " + s
	}
	return s
}

// waitDRBD polls until ok(state) or the timeout.
func (b *Bootstrap) waitDRBD(ctx context.Context, what string, ok func(drbd.Resource) bool) (drbd.Resource, error) {
	deadline := time.Now().Add(b.Timeout)
	for {
		st, up, err := b.drbdState(ctx)
		if err != nil {
			return st, err
		}
		if up && ok(st) {
			return st, nil
		}
		if time.Now().After(deadline) {
			return st, fmt.Errorf("timed out after %v waiting for %s (now %s %s/%s)", b.Timeout, what, st.Connection, st.Disk, st.PeerDisk)
		}
		select {
		case <-ctx.Done():
			return st, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func (b *Bootstrap) initialSync(ctx context.Context) (bool, string, error) {
	if b.DryRun {
		if b.First() {
			return true, "would wait for the peer, then start the initial sync from this node if both disks are Inconsistent", nil
		}
		return false, "the first node starts the initial sync", nil
	}
	st, err := b.waitDRBD(ctx, "the DRBD peer to connect", func(r drbd.Resource) bool { return r.Connection == drbd.ConnConnected })
	if err != nil {
		return false, "", err
	}
	if st.Disk == drbd.DiskInconsistent && st.PeerDisk == drbd.DiskInconsistent {
		if !b.First() {
			// The first node starts the sync; wait for it.
			_, err := b.waitDRBD(ctx, "the initial sync to start", func(r drbd.Resource) bool { return r.Disk != drbd.DiskInconsistent || r.Sync != nil })
			return false, "initial sync started by " + b.Cfg.Nodes[0].Name, err
		}
		if _, err := b.run(ctx, "drbdadm", "primary", "--force", b.Cfg.DRBD.Resource); err != nil {
			return false, "", err
		}
		return true, "started the initial sync to " + b.peerName(), nil
	}
	return false, fmt.Sprintf("data already in sync or syncing (%s/%s)", st.Disk, st.PeerDisk), nil
}

func (b *Bootstrap) peerName() string { p, _ := b.Cfg.Peer(b.Node); return p.Name }

// datadir makes the filesystem and MariaDB's datadir on the DRBD volume, on
// the first node, once.
func (b *Bootstrap) datadir(ctx context.Context) (bool, string, error) {
	if !b.First() {
		changed, err := b.placeholderDatadir(ctx)
		return changed, "the first node prepares the DRBD volume", err
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
		// Pacemaker has not taken over yet (an earlier run stopped, or the
		// node restarted): promote to check the volume, unless the peer is
		// Primary (then it holds the data and this node must not touch it).
		if st.PeerRole == drbd.RolePrimary {
			return false, "the peer holds the DRBD volume", nil
		}
		if _, err := b.run(ctx, "drbdadm", "primary", b.Cfg.DRBD.Resource); err != nil {
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
	mnt := b.Cfg.MySQL.MountPoint
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
	if _, err := os.Stat(filepath.Join(datadir, "mysql")); err != nil {
		if err := os.MkdirAll(datadir, 0o750); err != nil {
			return false, "", err
		}
		if _, err := b.run(ctx, "chown", "mysql:mysql", datadir); err != nil {
			return false, "", err
		}
		if _, err := b.run(ctx, "mariadb-install-db", "--user=mysql", "--datadir="+datadir, "--skip-test-db", "--auth-root-authentication-method=socket"); err != nil {
			return false, "", err
		}
		did = append(did, "initialized MariaDB's datadir "+datadir)
	}
	if err := b.createUsers(ctx, datadir); err != nil {
		return false, "", err
	}
	if b.Cfg.RabbitMQ.Mode == "active-passive" {
		dir := filepath.Join(mnt, "rabbitmq")
		if _, err := os.Stat(dir); err != nil {
			os.MkdirAll(dir, 0o750)
			b.run(ctx, "chown", "rabbitmq:rabbitmq", dir)
			did = append(did, "created "+dir)
		}
	}
	if len(did) == 0 {
		return false, "filesystem and datadir already on " + dev, nil
	}
	return true, strings.Join(did, ", "), nil
}

// placeholderDatadir creates the datadir path under the unmounted mount
// point: the mysql agent's probe on the standby checks that the datadir
// exists, and fails as "not installed" (which bans MariaDB from that node)
// when it does not.
func (b *Bootstrap) placeholderDatadir(ctx context.Context) (bool, error) {
	// The directories the mysql agent's MariaDB writes to (its error log
	// is /var/log/mysql/error.log; it fails to start without the directory).
	if !b.DryRun {
		for _, d := range []string{"/var/log/mysql", "/run/mysqld"} {
			if _, err := os.Stat(d); err != nil {
				if err := os.MkdirAll(d, 0o750); err != nil {
					return false, err
				}
				if _, err := b.run(ctx, "chown", "mysql:mysql", d); err != nil {
					return false, err
				}
			}
		}
	}
	if out, _ := b.run(ctx, "findmnt", "-n", b.Cfg.MySQL.MountPoint); len(bytes.TrimSpace(out)) > 0 {
		return false, nil // mounted: the real datadir is there
	}
	d := b.Cfg.MySQL.Datadir()
	if _, err := os.Stat(d); err == nil || b.DryRun {
		return false, nil
	}
	if err := os.MkdirAll(d, 0o750); err != nil {
		return false, err
	}
	_, err := b.run(ctx, "chown", "mysql:mysql", d)
	return true, err
}

// createUsers starts MariaDB privately (no network) on the datadir and
// creates haconf's own user from the secrets. The password goes in on
// stdin, never in argv.
func (b *Bootstrap) createUsers(ctx context.Context, datadir string) error {
	// MariaDB runs as mysql: its socket goes where mysql may write.
	if err := os.MkdirAll("/run/mysqld", 0o755); err != nil {
		return err
	}
	if _, err := b.run(ctx, "chown", "mysql:mysql", "/run/mysqld"); err != nil {
		return err
	}
	sock := "/run/mysqld/haconf-bootstrap.sock"
	pidf := "/run/mysqld/haconf-bootstrap.pid"
	if _, err := b.R.StartDaemon("mariadbd", []string{"--user=mysql", "--datadir=" + datadir, "--skip-networking", "--socket=" + sock, "--pid-file=" + pidf, "--skip-log-bin"}, "/var/log/haconf-bootstrap-mysqld.log"); err != nil {
		return err
	}
	defer func() {
		b.run(context.WithoutCancel(ctx), "mariadb-admin", "--socket="+sock, "shutdown")
	}()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := b.run(ctx, "mariadb-admin", "--socket="+sock, "ping"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			return errors.New("MariaDB did not start on the new datadir (see /var/log/haconf-bootstrap-mysqld.log)")
		}
		time.Sleep(300 * time.Millisecond)
	}
	user := b.Secrets.MySQLUser
	sql := fmt.Sprintf("CREATE USER IF NOT EXISTS '%s'@'%%' IDENTIFIED BY '%s';\nALTER USER '%s'@'%%' IDENTIFIED BY '%s';\nGRANT ALL PRIVILEGES ON *.* TO '%s'@'%%' WITH GRANT OPTION;\nFLUSH PRIVILEGES;\n",
		sqlQuote(user), sqlQuote(b.Secrets.MySQLPassword), sqlQuote(user), sqlQuote(b.Secrets.MySQLPassword), sqlQuote(user))
	_, err := b.R.RunCmd(ctx, runner.Cmd{Name: "mariadb", Args: []string{"--socket=" + sock, "--batch"}, Stdin: []byte(sql)})
	if err != nil {
		return errors.New("creating haconf's MariaDB user failed (the statement is not shown: it holds the password)")
	}
	return nil
}

func sqlQuote(s string) string { return strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) }

// systemd reports whether this machine runs systemd.
func systemd() bool {
	_, err := os.Stat("/run/systemd/system")
	return err == nil
}

func (b *Bootstrap) clusterStack(ctx context.Context) (bool, string, error) {
	// Hand DRBD to Pacemaker: it promotes where the services should run.
	if !b.DryRun {
		if st, up, _ := b.drbdState(ctx); up && st.Role == drbd.RolePrimary && !b.pacemakerRunning(ctx) {
			if _, err := b.run(ctx, "drbdadm", "secondary", b.Cfg.DRBD.Resource); err != nil {
				return false, "", err
			}
		}
	}
	var did []string
	for _, svc := range []struct{ name, bin string }{{"corosync", "corosync"}, {"pacemaker", "pacemakerd"}} {
		if _, err := b.run(ctx, "pidof", svc.bin); err == nil {
			continue
		}
		did = append(did, "started "+svc.name)
		if b.DryRun {
			continue
		}
		var err error
		switch {
		case systemd():
			_, err = b.run(ctx, "systemctl", "enable", "--now", svc.name)
		case svc.bin == "corosync":
			// In the foreground under StartDaemon: a forking corosync would
			// keep haconf's stdout and stderr, and die of SIGPIPE later.
			os.MkdirAll("/var/log/corosync", 0o755)
			var pid int
			pid, err = b.R.StartDaemon("corosync", []string{"-f"}, "/var/log/corosync/corosync.out")
			if err == nil {
				// Membership must outlive any memory pressure: if the OOM
				// killer takes corosync, the peer fences this node.
				_ = os.WriteFile(fmt.Sprintf("/proc/%d/oom_score_adj", pid), []byte("-1000"), 0o644)
			}
		default:
			os.MkdirAll("/var/log/pacemaker", 0o755)
			_, err = b.R.StartDaemon("pacemakerd", nil, "/var/log/pacemaker/pacemakerd.out")
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
	// Wait for both nodes to be members and a DC to be elected.
	deadline := time.Now().Add(b.Timeout)
	for {
		mon, err := b.crmMon(ctx)
		if err == nil && mon.DC != "" && onlineCount(mon) == 2 {
			break
		}
		if time.Now().After(deadline) {
			return false, "", fmt.Errorf("timed out after %v waiting for both nodes to join the cluster", b.Timeout)
		}
		time.Sleep(time.Second)
	}
	if len(did) == 0 {
		return false, "corosync and pacemaker running, both nodes online", nil
	}
	return true, strings.Join(did, ", ") + "; both nodes online", nil
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

func (b *Bootstrap) crmMon(ctx context.Context) (pacemaker.CrmMon, error) {
	out, err := b.run(ctx, "crm_mon", "--output-as=xml", "--inactive")
	if err != nil {
		return pacemaker.CrmMon{}, err
	}
	return pacemaker.ParseCrmMon(out)
}

// AgentsAttribute is the permanent node attribute in which each node
// says which of haconf's resource agents it has installed (a digest of
// the wrappers): the first node pushes a CIB only once its peer has them,
// or Pacemaker would probe the peer, find "not installed", and believe
// the resource stopped there - while it still runs.
const AgentsAttribute = "haconf-agents"

// agentsDigest identifies the resource agent wrappers this node renders.
func (b *Bootstrap) agentsDigest() (string, error) {
	files, err := templates.Render(b.Cfg, b.Node, templates.Options{DRBDVersion: b.DRBDVersion})
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

// waitPeerAgents waits until the peer announces the same agents.
func (b *Bootstrap) waitPeerAgents(ctx context.Context, digest string) error {
	peer := b.peerName()
	deadline := time.Now().Add(b.Timeout)
	var have string
	for {
		out, err := b.run(ctx, "crm_attribute", "-N", peer, "-n", AgentsAttribute, "-l", "forever", "-G", "-q")
		if have = strings.TrimSpace(string(out)); err == nil && have == digest {
			return nil
		}
		if time.Now().After(deadline) {
			if have == "" {
				have = "none"
			}
			return fmt.Errorf("%s has not installed this version of haconf's resource agents (its %s is %s, this node's %s) after %v: run haconf bootstrap on %s too, before the CIB that uses them can be pushed", peer, AgentsAttribute, have, digest, b.Timeout, peer)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
}

func (b *Bootstrap) cib(ctx context.Context) (bool, string, error) {
	if b.DryRun {
		if !b.First() {
			return false, "the first node pushes the CIB", nil
		}
		return true, "would replace the CIB configuration section with /etc/haconf/cib.xml unless it already matches", nil
	}
	digest, err := b.agentsDigest()
	if err != nil {
		return false, "", err
	}
	// Set only when it differs: an unchanged re-run leaves the CIB epoch alone.
	if out, err := b.run(ctx, "crm_attribute", "-N", b.Node, "-n", AgentsAttribute, "-l", "forever", "-G", "-q"); err != nil || strings.TrimSpace(string(out)) != digest {
		if _, err := b.run(ctx, "crm_attribute", "-N", b.Node, "-n", AgentsAttribute, "-l", "forever", "-v", digest); err != nil {
			return false, "", err
		}
	}
	if !b.First() {
		return false, "the first node pushes the CIB", nil
	}
	rendered, err := os.ReadFile(filepath.Join(b.Root, templates.CIBPath))
	if err != nil {
		return false, "", err
	}
	live, err := b.run(ctx, "cibadmin", "--query", "--scope", "configuration")
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
		f := filepath.Join(b.Root, "etc/haconf/.cib-"+u.Scope+".xml")
		if err := atomicfile.Write(f, u.XML, 0o600); err != nil {
			return false, "", err
		}
		if _, err := b.run(ctx, "cibadmin", u.Args(f)...); err != nil {
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
		if _, err := b.run(ctx, "crm_attribute", "-N", n, "-n", AgentsAttribute, "-l", "forever", "-v", digest); err != nil {
			return false, "", err
		}
	}
	return true, "pushed the CIB sections " + strings.Join(scopes, ", "), nil
}

func (b *Bootstrap) resources(ctx context.Context) (bool, string, error) {
	if b.DryRun {
		return false, "would wait until every resource has started", nil
	}
	if b.NoWait {
		return false, "not waiting for resources (--wait=false)", nil
	}
	deadline := time.Now().Add(b.Timeout)
	for {
		mon, err := b.crmMon(ctx)
		var stopped []string
		if err == nil {
			stopped = notStarted(mon)
			if len(mon.Resources) > 0 && len(stopped) == 0 {
				return false, fmt.Sprintf("%d resource instances running", len(mon.Resources)), nil
			}
			if len(mon.Resources) == 0 {
				stopped = []string{"(no resources in the CIB yet)"}
			}
		} else {
			stopped = []string{"(crm_mon: " + err.Error() + ")"}
		}
		if time.Now().After(deadline) {
			return false, "", fmt.Errorf("timed out after %v; not running: %s", b.Timeout, strings.Join(stopped, ", "))
		}
		select {
		case <-ctx.Done():
			return false, "", ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
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
func (b *Bootstrap) watchdog(ctx context.Context) (bool, string, error) {
	const unit = "haconf-watchdog"
	if !systemd() {
		return false, "no systemd here: run haconf watchdog -c " + templates.DefaultConfigPath + " from this machine's init", nil
	}
	enabled, _ := b.run(ctx, "systemctl", "is-enabled", unit)
	active, _ := b.run(ctx, "systemctl", "is-active", unit)
	if strings.TrimSpace(string(enabled)) == "enabled" && strings.TrimSpace(string(active)) == "active" {
		return false, unit + " enabled and running", nil
	}
	if b.DryRun {
		return true, "would enable and start " + unit, nil
	}
	// The unit file is new or changed (files step): systemd must reread it.
	if _, err := b.run(ctx, "systemctl", "daemon-reload"); err != nil {
		return false, "", err
	}
	if _, err := b.run(ctx, "systemctl", "enable", "--now", unit); err != nil {
		return false, "", err
	}
	return true, "enabled and started " + unit, nil
}
