package bootstrap

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/haconf/haconf/internal/config"
	"github.com/haconf/haconf/internal/fixtures"
	"github.com/haconf/haconf/internal/runner"
	"github.com/haconf/haconf/pacemaker"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// Captured tool output, read from the packages that own it.
var (
	procUnconfigured = fixtures.Path("drbd", "captured-proc-drbd-84-connected-inconsistent.txt") // its version lines only
	procInconsistent = fixtures.Path("drbd", "captured-proc-drbd-84-connected-inconsistent.txt")
	procSyncSource   = fixtures.Path("drbd", "captured-proc-drbd-84-syncsource-primary.txt")
	procSyncTarget   = fixtures.Path("drbd", "captured-proc-drbd-84-synctarget-secondary.txt")
	procPrimary      = fixtures.Path("drbd", "captured-proc-drbd-84-connected-primary.txt")
	procSecondary    = fixtures.Path("drbd", "captured-proc-drbd-84-connected-secondary.txt")
	monMembers       = fixtures.Path("pacemaker", "crmmon/captured-crm_mon-215-xml-two-online-fencing-started.xml")
	monHealthy       = fixtures.Path("pacemaker", "crmmon/sim-status/healthy.xml")
)

// emptyCIB is a new cluster's configuration (cibadmin --empty).
const emptyCIB = "<configuration><crm_config/><nodes/><resources/><constraints/></configuration>"

// unitProcs are the processes each systemd unit runs.
var unitProcs = map[string][]string{
	"rabbitmq-server": {"beam.smp"},
	"corosync":        {pacemaker.CorosyncDaemon},
	"pacemaker":       {pacemaker.PacemakerDaemon, "pacemaker-controld"},
	"haconf-watchdog": {"haconf"},
}

// fakeController is one controller as bootstrap drives it, with its peer
// bootstrapping at the same time: Debian's packages, systemd units and
// processes, the DRBD pair (its /proc/drbd written under the root from
// captured files), the backing disk's and the DRBD volume's signatures,
// a private MariaDB and the cluster (crm_mon from captured XML, the CIB's
// configuration and node attributes). It keeps that state, answers every
// command from it and records each one. What it does not model: the
// volume's mount hiding what is below it (files on the volume land in the
// root).
type fakeController struct {
	t    *testing.T
	root string
	node string
	ran  []string
	// hide maps strings that vary between runs (the root, the agents'
	// digest) to fixed names in the record.
	hide *strings.Replacer

	installed  map[string]bool
	enabled    map[string]bool
	active     map[string]bool
	procs      map[string]bool
	drbdMD     bool   // DRBD metadata on the backing disk
	fsType     string // filesystem on the DRBD device
	mounted    bool
	live       []byte            // the CIB's configuration section
	attrs      map[string]string // node -> haconf-agents
	peerAgents string            // what the peer announces once the cluster runs
	pushed     bool              // a CIB with the resources is in
	peerSyncs  bool              // the peer starts the initial sync
}

func newFake(t *testing.T, root, node, peerAgents string) *fakeController {
	return &fakeController{
		t: t, root: root, node: node, peerAgents: peerAgents,
		installed: map[string]bool{}, enabled: map[string]bool{}, active: map[string]bool{}, procs: map[string]bool{},
		live: []byte(emptyCIB), attrs: map[string]string{},
	}
}

var errExit1 = errors.New("exit status 1")

func (f *fakeController) fixture(name string) []byte {
	b, err := os.ReadFile(name)
	if err != nil {
		f.t.Fatal(err)
	}
	return b
}

func (f *fakeController) writeProc(b []byte) {
	p := filepath.Join(f.root, procDRBD)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		f.t.Fatal(err)
	}
	os.Remove(p)
	if err := os.WriteFile(p, b, 0o444); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fakeController) readProc() []byte {
	b, _ := os.ReadFile(filepath.Join(f.root, procDRBD))
	return b
}

func (f *fakeController) exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil && strings.HasPrefix(p, f.root)
}

func (f *fakeController) record(line string) { f.ran = append(f.ran, f.hide.Replace(line)) }

func (f *fakeController) setUnit(unit string, on bool) {
	f.enabled[unit], f.active[unit] = on, on
	for _, p := range unitProcs[unit] {
		f.procs[p] = on
	}
	if unit == "pacemaker" && on && f.peerAgents != "" {
		f.attrs[peerOf(f.node)] = f.peerAgents
	}
}

func peerOf(node string) string {
	if node == "ctl1" {
		return "ctl2"
	}
	return "ctl1"
}

func (f *fakeController) RunCmd(ctx context.Context, c runner.Cmd) ([]byte, error) {
	line := strings.Join(append([]string{c.Name}, c.Args...), " ")
	if len(c.Env) > 0 {
		line = strings.Join(c.Env, " ") + " " + line
	}
	if c.Stdin != nil {
		line += fmt.Sprintf(" <<< %q", c.Stdin)
	}
	f.record(line)
	a := c.Args
	arg := func(i int) string {
		if i < len(a) {
			return a[i]
		}
		return ""
	}
	switch c.Name {
	case "dpkg-query":
		if f.installed[a[len(a)-1]] {
			return []byte("install ok installed"), nil
		}
		return nil, errExit1
	case "apt-get":
		for _, p := range a[3:] {
			f.installed[p] = true
		}
		if slices.Contains(a, "rabbitmq-server") {
			// Debian's postinst starts a standalone broker.
			f.setUnit("rabbitmq-server", true)
			node := filepath.Join(f.root, rabbitMQMnesia, "rabbit@"+f.node)
			os.MkdirAll(node, 0o750)
			os.WriteFile(filepath.Join(node, "cluster_nodes.config"), []byte("{[rabbit@"+f.node+"],[rabbit@"+f.node+"]}.\n"), 0o640)
		}
		return nil, nil
	case "chown":
		if !f.exists(arg(1)) {
			return nil, fmt.Errorf("chown: cannot access '%s': No such file or directory", arg(1))
		}
		return nil, nil
	case "systemctl":
		unit := arg(len(a) - 1)
		switch arg(0) {
		case "is-enabled":
			if f.enabled[unit] {
				return []byte("enabled\n"), nil
			}
			return []byte("disabled\n"), errExit1
		case "is-active":
			if f.active[unit] {
				return []byte("active\n"), nil
			}
			return []byte("inactive\n"), errors.New("exit status 3")
		case "disable":
			f.setUnit(unit, false)
			return nil, nil
		case "enable":
			f.setUnit(unit, true)
			return nil, nil
		case "daemon-reload":
			return nil, nil
		}
	case "pidof":
		if f.procs[arg(0)] {
			return []byte("4242\n"), nil
		}
		return nil, errExit1
	case "modprobe":
		lines := strings.SplitAfter(string(f.fixture(procUnconfigured)), "\n")
		f.writeProc([]byte(strings.Join(lines[:2], "")))
		return nil, nil
	case "blkid":
		t := ""
		switch dev := a[len(a)-1]; {
		case dev == "/dev/vg0/haconf" && f.drbdMD:
			t = "drbd"
		case dev == "/dev/drbd0":
			t = f.fsType
		}
		if t == "" {
			return nil, errors.New("exit status 2")
		}
		return []byte(t + "\n"), nil
	case "drbdadm":
		return f.drbdadm(c)
	case "mkfs.ext4":
		f.fsType = "ext4"
		return nil, nil
	case "findmnt":
		if f.mounted {
			return []byte(arg(1) + " /dev/drbd0 ext4 rw,relatime\n"), nil
		}
		return nil, errExit1
	case "mount":
		if f.fsType == "" || !f.exists(arg(1)) {
			return nil, errors.New("mount: wrong fs type, bad option, bad superblock on " + arg(0))
		}
		f.mounted = true
		return nil, nil
	case "umount":
		f.mounted = false
		return nil, nil
	case "mariadb-install-db":
		for _, x := range a {
			if d, ok := strings.CutPrefix(x, "--datadir="); ok {
				return nil, os.Mkdir(filepath.Join(d, "mysql"), 0o700)
			}
		}
	case "mariadb-admin":
		if !f.procs["mariadbd"] {
			return nil, errors.New("mariadb-admin: connect to server failed")
		}
		if arg(1) == "shutdown" {
			f.procs["mariadbd"] = false
		}
		return nil, nil
	case "mariadb":
		if f.procs["mariadbd"] {
			return nil, nil
		}
	case "crm_mon":
		switch {
		case !f.procs["pacemaker-controld"]:
			return nil, errors.New("crm_mon: Error: cluster is not available on this node")
		case f.pushed:
			return f.fixture(monHealthy), nil
		default:
			return f.fixture(monMembers), nil
		}
	case "crm_attribute":
		if !f.procs["pacemaker-controld"] {
			return nil, errors.New("crm_attribute: Could not connect to the CIB")
		}
		if arg(len(a)-2) == "-G" {
			if v, ok := f.attrs[arg(1)]; ok {
				return []byte(v + "\n"), nil
			}
			return nil, errors.New("exit status 105")
		}
		f.attrs[arg(1)] = arg(len(a) - 1)
		if arg(1) == f.node && f.node != "ctl1" && !f.pushed {
			// ctl1 waited for this node's agents: it pushes the CIB.
			f.push()
		}
		return nil, nil
	case "cibadmin":
		if arg(0) == "--query" {
			return f.live, nil
		}
		if arg(0) == "--replace" && arg(1) == "--scope" && arg(3) == "--xml-file" {
			x, err := os.ReadFile(arg(4))
			if err != nil {
				return nil, err
			}
			switch scope := arg(2); scope {
			case "configuration":
				f.live = x
			default:
				f.live = bytes.Replace(f.live, pacemaker.Section(f.live, scope), x, 1)
			}
			if arg(2) == "configuration" || arg(2) == "nodes" {
				clear(f.attrs) // as Pacemaker does: the new nodes section has none
			}
			f.push()
			return nil, nil
		}
	}
	return nil, errors.New("fake controller: unexpected command " + line)
}

// push is a CIB with the resources arriving: Pacemaker starts them and
// promotes DRBD on ctl1, which mounts the volume.
func (f *fakeController) push() {
	f.pushed = true
	// Pacemaker keeps its copy of the CIB on disk.
	cib := filepath.Join(f.root, pacemaker.CIBFile)
	if err := os.MkdirAll(filepath.Dir(cib), 0o750); err != nil {
		f.t.Fatal(err)
	}
	if err := os.WriteFile(cib, []byte("<cib><configuration>"+string(f.live)+"</configuration></cib>"), 0o600); err != nil {
		f.t.Fatal(err)
	}
	if f.node == "ctl1" {
		f.writeProc(f.fixture(procPrimary))
		f.mounted = true
	} else {
		f.writeProc(f.fixture(procSecondary))
	}
}

func (f *fakeController) drbdadm(c runner.Cmd) ([]byte, error) {
	a := c.Args
	proc := f.readProc()
	switch {
	case a[0] == "create-md" && string(c.Stdin) == "yes\n":
		f.drbdMD = true
		return nil, nil
	case a[0] == "up" && f.drbdMD && proc != nil:
		// The peer's bootstrap brought its side up as well.
		f.writeProc(f.fixture(procInconsistent))
		if f.peerSyncs {
			// ... and, a little later, starts the initial sync.
			time.AfterFunc(3*time.Second, func() { f.writeProc(f.fixture(procSyncTarget)) })
		}
		return nil, nil
	case a[0] == "primary" && len(a) == 3 && a[1] == "--force":
		f.writeProc(f.fixture(procSyncSource))
		return nil, nil
	case a[0] == "secondary" && bytes.Contains(proc, []byte("ro:Primary/")):
		f.writeProc(bytes.Replace(proc, []byte("ro:Primary/"), []byte("ro:Secondary/"), 1))
		return nil, nil
	}
	return nil, errors.New("fake controller: drbdadm cannot " + strings.Join(a, " "))
}

func (f *fakeController) StartDaemon(name string, args []string, logPath string) (int, error) {
	f.record(fmt.Sprintf("start %s %s > %s", name, strings.Join(args, " "), logPath))
	if name != "mariadbd" {
		return 0, errors.New("fake controller: unexpected daemon " + name)
	}
	f.procs["mariadbd"] = true
	return 4343, nil
}

// readOnly reports whether a recorded command only looks.
func readOnly(line string) bool {
	for _, p := range []string{"dpkg-query ", "systemctl is-", "pidof ", "blkid ", "findmnt ", "crm_mon ", "cibadmin --query "} {
		if strings.HasPrefix(line, p) {
			return true
		}
	}
	return strings.HasPrefix(line, "crm_attribute ") && strings.Contains(line, " -G ")
}

// tree lists the files and directories under root, with the files'
// modes; /proc is the fake kernel's.
func tree(t *testing.T, root string) []string {
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "proc" {
			return filepath.SkipDir
		}
		if d.IsDir() {
			out = append(out, rel+"/")
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		out = append(out, fmt.Sprintf("%s %#o", rel, info.Mode().Perm()))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func testSecrets() *Secrets {
	return &Secrets{
		CorosyncAuthkey:       base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0x5a}, 128)),
		ErlangCookie:          "ERLANGCOOKIEFORTHEBOOTSTRAPTEST",
		MySQLUser:             "haconf",
		MySQLPassword:         "not-a-real-password",
		FencePasswords:        map[string]string{"ctl1": "bmc-ctl1-password", "ctl2": "bmc-ctl2-password"},
		ComputeFencePasswords: map[string]string{"cmp1": "bmc-cmp1-password", "cmp2": "bmc-cmp2-password"},
	}
}

// runCase runs a whole bootstrap against f and returns its report: the
// output lines, the commands and the files under the root.
func runCase(t *testing.T, b *Bootstrap, f *fakeController) (string, []Result) {
	t.Helper()
	var w strings.Builder
	b.Progress = func(r Result) {
		mark := "ok     "
		if r.Changed {
			mark = "changed"
		}
		fmt.Fprintf(&w, "%s %-14s %s\n", mark, r.Step, r.Detail)
	}
	f.ran = nil
	results, err := b.Run(context.Background())
	if err != nil {
		t.Fatalf("%v\noutput:\n%s\ncommands:\n%s", err, w.String(), strings.Join(f.ran, "\n"))
	}
	fmt.Fprintf(&w, "\n## commands\n%s\n\n## files\n%s\n", strings.Join(f.ran, "\n"), strings.Join(tree(t, f.root), "\n"))
	return "## output\n" + f.hide.Replace(w.String()), results
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	p := filepath.Join("testdata", "golden", name+".txt")
	if *update {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test -run %s -update)", err, t.Name())
	}
	if got != string(want) {
		t.Errorf("%s differs from the run (go test -run %s -update rewrites it); got:\n%s", p, t.Name(), got)
	}
}

// newRun is a fresh controller node of the example configuration (with
// systemd, DRBD 8.4) and the fake it runs on.
func newRun(t *testing.T, node string) (*Bootstrap, *fakeController) {
	t.Helper()
	c, err := config.Parse("example.yaml", config.Example())
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "run/systemd/system"), 0o755); err != nil {
		t.Fatal(err)
	}
	b := &Bootstrap{Cfg: c, Node: node, Secrets: testSecrets(), DRBDVersion: "8.4", Root: root, Timeout: time.Minute, Broker: func(context.Context) error { return nil }}
	peer := &Bootstrap{Cfg: c, Node: peerOf(node), DRBDVersion: "8.4"}
	peerDigest, err := peer.agentsDigest()
	if err != nil {
		t.Fatal(err)
	}
	digest, err := (&Bootstrap{Cfg: c, Node: node, DRBDVersion: "8.4"}).agentsDigest()
	if err != nil {
		t.Fatal(err)
	}
	f := newFake(t, root, node, peerDigest)
	f.hide = strings.NewReplacer(root, "ROOT", digest, "DIGEST", peerDigest, "PEERDIGEST")
	b.R = f
	return b, f
}

// Bootstrap runs whole against a fake controller: the first node on a
// fresh machine does everything, in order; run again, it only looks. The
// golden files hold the output lines, every command and the files left
// under the root.
func TestRunFirstNode(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, f := newRun(t, "ctl1")
		report, results := runCase(t, b, f)
		golden(t, "ctl1-fresh", report)
		if len(results) != len(Steps) {
			t.Fatalf("%d results for %d steps", len(results), len(Steps))
		}
		for i, r := range results {
			if r.Step != Steps[i] {
				t.Errorf("result %d is step %s, Steps says %s", i, r.Step, Steps[i])
			}
		}
		files := tree(t, f.root)

		b.rendered = nil // a new run renders again
		report, results = runCase(t, b, f)
		golden(t, "ctl1-again", report)
		for _, r := range results {
			if r.Changed {
				t.Errorf("second run changed %s: %s", r.Step, r.Detail)
			}
		}
		for _, c := range f.ran {
			if !readOnly(c) {
				t.Errorf("second run ran %q", c)
			}
		}
		if again := tree(t, f.root); !slices.Equal(files, again) {
			t.Errorf("second run changed the files:\n%s\nnow:\n%s", strings.Join(files, "\n"), strings.Join(again, "\n"))
		}
	})
}

// A dry run on a fresh machine reports the plan, only looks, and writes
// nothing.
// TestRunRejoin is bootstrap run again on the first node after it crashed
// (the README's "re-runs change nothing"): its cluster stack did not start
// at boot, DRBD is down and the volume unmounted, and the node may hold the
// only good copy of the data or an Outdated one. It starts the cluster
// stack and leaves DRBD, the volume and MariaDB to Pacemaker: no promotion,
// no mkfs, no mount, no private MariaDB.
func TestRunRejoin(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, f := newRun(t, "ctl1")
		runCase(t, b, f)
		// The crash: every process gone, DRBD down, nothing mounted; the
		// disks and the files under the root as they were.
		for _, u := range []string{"corosync", "pacemaker", "haconf-watchdog"} {
			f.active[u] = false
			for _, p := range unitProcs[u] {
				f.procs[p] = false
			}
		}
		f.writeProc(f.fixture(procUnconfigured)[:0])
		os.Remove(filepath.Join(f.root, procDRBD))
		f.mounted, f.pushed = false, false
		f.ran = nil
		b.rendered, b.NoWait = nil, true
		report, results := runCase(t, b, f)
		golden(t, "ctl1-rejoin", report)
		for _, c := range f.ran {
			for _, bad := range []string{"drbdadm ", "modprobe ", "mkfs", "mount ", "mariadb", "cibadmin --replace"} {
				if strings.HasPrefix(c, bad) {
					t.Errorf("the rejoin ran %q: that is Pacemaker's job once the pair is bootstrapped", c)
				}
			}
		}
		for _, r := range results {
			if r.Step == "cluster-stack" && !r.Changed {
				t.Errorf("the rejoin did not start the cluster stack: %s", r.Detail)
			}
		}
	})
}

func TestRunDryRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, f := newRun(t, "ctl1")
		b.DryRun = true
		before := tree(t, f.root)
		report, _ := runCase(t, b, f)
		golden(t, "ctl1-dry-run", report)
		for _, c := range f.ran {
			if !readOnly(c) {
				t.Errorf("dry run ran %q", c)
			}
		}
		if after := tree(t, f.root); !slices.Equal(before, after) {
			t.Errorf("dry run wrote files: %v", after)
		}
	})
}

// The second node on a fresh machine waits for the first to start the
// initial sync and to push the CIB, and prepares only the placeholder
// datadir.
func TestRunSecondNode(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, f := newRun(t, "ctl2")
		f.peerSyncs = true
		report, _ := runCase(t, b, f)
		golden(t, "ctl2-fresh", report)
	})
}

// wait ends with ctx, and after the timeout with what the last look saw.
func TestWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		looks := 0
		never := func() (bool, error) { looks++; return false, nil }
		err := wait(context.Background(), time.Minute, 2*time.Second, never, func() error { return fmt.Errorf("still not after %d looks", looks) })
		if err == nil || err.Error() != "still not after 32 looks" {
			t.Errorf("timeout: %v", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		start := time.Now()
		if err := wait(ctx, time.Hour, time.Second, never, nil); !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 6*time.Second {
			t.Errorf("ctx ended after %v: %v", time.Since(start), err)
		}
		boom := errors.New("boom")
		if err := wait(context.Background(), time.Hour, time.Second, func() (bool, error) { return false, boom }, nil); err != boom {
			t.Errorf("ready's error: %v", err)
		}
	})
}
