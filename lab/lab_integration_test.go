package lab

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/haconf/haconf/internal/fixtures"
	"github.com/haconf/haconf/internal/runner"
	"github.com/haconf/haconf/internal/testenv"
)

var capture = flag.Bool("capture", false, "write the tool outputs seen in the lab into the testdata of the packages that parse them")

// drbdRes is the test's resource: 64 MiB, fast resync, quick failure
// detection, and DRBD's default after-split-brain policy (disconnect).
const drbdRes = `resource r0 {
	protocol C;
	device /dev/drbd0;
	disk /dev/vg0/labtest;
	meta-disk internal;
	net {
		ping-int 2;
		ping-timeout 5;
		timeout 10;
		connect-int 2;
		after-sb-0pri disconnect;
		after-sb-1pri disconnect;
		after-sb-2pri disconnect;
	}
	disk {
		resync-rate 100M;
		c-plan-ahead 0;
	}
	on ctl1 { address 10.251.1.11:7789; }
	on ctl2 { address 10.251.1.12:7789; }
}
`

// TestLab brings the lab up from nothing, replicates a DRBD resource,
// produces a real split brain, crashes and restarts a node, fences one
// through the fence agent, and takes the lab down, checking that nothing of
// it is left.
func TestLab(t *testing.T) {
	l, ctx := newTestLab(t)

	// Up from nothing, then again (idempotent).
	start := time.Now()
	if err := l.Up(ctx); err != nil {
		fatalf(t, "lab up: %v", err)
	}
	t.Logf("lab up from nothing: %s", time.Since(start).Round(time.Millisecond))
	pid1, _ := l.Running(Nodes[0])
	start = time.Now()
	if err := l.Up(ctx); err != nil {
		fatalf(t, "second lab up: %v", err)
	}
	if pid, _ := l.Running(Nodes[0]); pid != pid1 {
		errorf(t, "second up restarted ctl1 (pid %d -> %d)", pid1, pid)
	}
	t.Logf("second lab up: %s", time.Since(start).Round(time.Millisecond))

	x := &execer{t: t, ctx: ctx, l: l}

	// A node's writes stay in the node.
	x.sh("ctl1", "echo probe > /etc/haconf-lab-probe")
	if _, err := os.Stat("/etc/haconf-lab-probe"); err == nil {
		fatal(t, "a node's write reached the host's /etc")
	}
	if res := x.exec("ctl2", "sh", "-c", "exit 7"); res.ExitCode != 7 {
		errorf(t, "exit code: got %d, want 7", res.ExitCode)
	}

	// DRBD 8.4 in both nodes, on an LVM volume; a snapshot works there too.
	for _, n := range []string{"ctl1", "ctl2"} {
		x.shIn(n, drbdRes, "cat > /etc/drbd.d/r0.res")
		x.sh(n, "modprobe drbd && lvcreate -y -n labtest -L 64M vg0 && drbdadm create-md --force r0 && drbdadm up r0")
	}
	x.sh("ctl1", "lvcreate -y -s -n labsnap -L 8M vg0/haconf && lvs vg0/labsnap && lvremove -y vg0/labsnap")
	x.waitDRBD("ctl1", "cs:Connected ro:Secondary/Secondary ds:Inconsistent/Inconsistent")
	x.save("proc-drbd-84-connected-inconsistent.txt", x.sh("ctl1", "cat /proc/drbd"))
	x.sh("ctl1", "drbdadm primary --force r0")
	// The initial sync takes about 2 s: catch it in flight for the fixtures.
	if out, ok := x.pollDRBD("ctl1", "cs:SyncSource", 5*time.Second); ok {
		x.saveDRBD(out, "")
		if out, ok := x.pollDRBD("ctl2", "cs:SyncTarget", time.Second); ok {
			x.saveDRBD(out, "")
		}
	}
	x.waitDRBD("ctl1", "cs:Connected ro:Primary/Secondary ds:UpToDate/UpToDate")
	x.waitDRBD("ctl2", "cs:Connected ro:Secondary/Primary ds:UpToDate/UpToDate")
	x.save("proc-drbd-84-connected-primary.txt", x.sh("ctl1", "cat /proc/drbd"))
	x.save("proc-drbd-84-connected-secondary.txt", x.sh("ctl2", "cat /proc/drbd"))
	x.save("drbdadm-84-get-gi-connected-primary.txt", x.sh("ctl1", "drbdadm get-gi r0"))
	x.save("drbdadm-84-show-gi-connected-primary.txt", x.sh("ctl1", "drbdadm show-gi r0"))

	// Cut replication, write on both sides.
	if err := l.Partition(ctx, "ctl2", LinkStorage); err != nil {
		fatal(t, err)
	}
	if st, err := l.Status(ctx); err != nil || st.Nodes[1].Links["storage"] != "cut" || st.Nodes[1].Links["mgmt"] != "connected" {
		fatalf(t, "status after partition: %+v, %v", st, err)
	}
	x.sh("ctl1", "dd if=/dev/urandom of=/dev/drbd0 bs=4k count=16 oflag=direct")
	x.waitDRBD("ctl1", "cs:WFConnection ro:Primary/Unknown")
	x.waitDRBD("ctl2", "cs:WFConnection ro:Secondary/Unknown")
	x.save("proc-drbd-84-wfconnection-primary.txt", x.sh("ctl1", "cat /proc/drbd"))
	x.sh("ctl2", "drbdadm primary r0 && dd if=/dev/urandom of=/dev/drbd0 bs=4k count=8 seek=1000 oflag=direct")
	x.save("proc-drbd-84-wfconnection-both-primary.txt", x.sh("ctl2", "cat /proc/drbd"))

	// Heal: both sides see the split brain and stay StandAlone.
	if err := l.Heal(ctx); err != nil {
		fatal(t, err)
	}
	x.waitDRBD("ctl1", "cs:StandAlone")
	x.waitDRBD("ctl2", "cs:StandAlone")
	for _, n := range []string{"ctl1", "ctl2"} {
		if log := x.sh(n, "dmesg"); !strings.Contains(log, "Split-Brain detected but unresolved, dropping connection!") {
			errorf(t, "%s kernel log has no split-brain message", n)
		}
		x.save("proc-drbd-84-standalone-splitbrain-"+n+".txt", x.sh(n, "cat /proc/drbd"))
		x.save("drbdadm-84-get-gi-splitbrain-"+n+".txt", x.sh(n, "drbdadm get-gi r0"))
		x.save("drbdadm-84-show-gi-splitbrain-"+n+".txt", x.sh(n, "drbdadm show-gi r0"))
	}
	x.save("dmesg-drbd-84-splitbrain-ctl2.txt", x.sh("ctl2", "dmesg | grep -E 'drbd|block drbd0'"))
	gi := strings.TrimSpace(x.sh("ctl2", "drbdadm get-gi r0"))

	// Crash ctl2 and boot it again: its disks are as they were.
	x.sh("ctl2", "echo kept > /root/marker && sync")
	if err := l.Crash(ctx, "ctl2"); err != nil {
		fatal(t, err)
	}
	if _, ok := l.Running(Nodes[1]); ok {
		fatal(t, "ctl2 still runs after crash")
	}
	start = time.Now()
	if err := l.Start(ctx, "ctl2"); err != nil {
		fatal(t, err)
	}
	t.Logf("ctl2 back after crash: %s", time.Since(start).Round(time.Millisecond))
	if got := strings.TrimSpace(x.sh("ctl2", "cat /root/marker")); got != "kept" {
		errorf(t, "marker after crash = %q", got)
	}
	x.sh("ctl2", "modprobe drbd && drbdadm up r0")
	x.save("proc-drbd-84-after-crash-wfconnection.txt", x.sh("ctl2", "cat /proc/drbd"))
	after := strings.TrimSpace(x.sh("ctl2", "drbdadm get-gi r0"))
	if maskRole(after) != maskRole(gi) {
		errorf(t, "ctl2 current UUID changed across the crash: %s -> %s", gi, after)
	}
	x.save("drbdadm-84-show-gi-crashed-primary.txt", x.sh("ctl2", "drbdadm show-gi r0"))

	// Fencing for real: ctl1 powers ctl2 off and on through the fence agent.
	if res := x.execIn("ctl1", "action=status\nport=ctl2\n", "fence_haconf_lab"); res.ExitCode != 0 {
		errorf(t, "fence status: exit %d: %s%s", res.ExitCode, res.Stdout, res.Stderr)
	}
	if res := x.exec("ctl1", "fence_haconf_lab", "-o", "off", "-n", "ctl2"); res.ExitCode != 0 {
		fatalf(t, "fence off: exit %d: %s%s", res.ExitCode, res.Stdout, res.Stderr)
	}
	if _, ok := l.Running(Nodes[1]); ok {
		t.Error("ctl2 still runs after fence off")
	}
	if res := x.exec("ctl1", "fence_haconf_lab", "-o", "status", "-n", "ctl2"); res.ExitCode != 2 {
		errorf(t, "fence status of an off node: exit %d, want 2", res.ExitCode)
	}
	if res := x.exec("ctl1", "fence_haconf_lab", "-o", "on", "-n", "ctl2"); res.ExitCode != 0 {
		fatalf(t, "fence on: exit %d: %s%s", res.ExitCode, res.Stdout, res.Stderr)
	}
	if err := l.waitAnswer(ctx, Nodes[1]); err != nil {
		fatal(t, err)
	}

	downAndCheck(ctx, t, l)
}

// downAndCheck takes the lab down with --purge and checks that no process,
// interface, mount or file of it is left.
func downAndCheck(ctx context.Context, t *testing.T, l *Lab) {
	t.Helper()
	dir := l.Dir
	if err := l.Down(ctx, true); err != nil {
		fatalf(t, "lab down: %v", err)
	}
	if pids := Leftovers(dir); len(pids) > 0 {
		errorf(t, "processes left after down: %v", pids)
	}
	out, err := l.Run.Run(ctx, "ip", "-j", "link", "show")
	if err != nil {
		fatal(t, err)
	}
	if links, _ := parseLinks(out); len(links) > 0 {
		errorf(t, "interfaces left after down: %v", links)
	}
	if m := mountsUnder(dir); len(m) > 0 {
		errorf(t, "mounts left after down: %v", m)
	}
	if _, err := os.Stat(dir); err == nil {
		errorf(t, "%s left after down --purge", dir)
	}
}

// newTestLab skips unless the machine can run a lab, builds haconf for the
// nodes and returns a lab in a fresh directory that the test's cleanup
// takes down, with a context bounded by the test's deadline.
func newTestLab(t *testing.T) (*Lab, context.Context) {
	t.Helper()
	repeatFailures(t)
	testenv.RequireRoot(t)
	testenv.RequireCommands(t, "go", "ip", "dpkg-query", "apt-get")
	if testing.Short() {
		t.Skip("boots two UML nodes")
	}
	testenv.LockLab(t)
	run := runner.Exec{}
	labUp := func() bool {
		out, _ := run.Run(context.Background(), "ip", "-j", "link", "show")
		return strings.Contains(string(out), `"hclab-`)
	}
	if labUp() {
		// The demo's lab (make demo leaves it up) holds the bridges and
		// addresses: take it down, keeping its disks (haconf-lab up boots
		// it again), and say so. Any other lab is someone's: fail.
		msg := "another haconf lab is up on this machine: taking the demo's lab (" + DefaultDir + ") down for the test; haconf-lab up boots it again"
		t.Log(msg)
		fmt.Fprintln(os.Stderr, "lab test: "+msg)
		if err := (&Lab{Dir: DefaultDir, Run: run}).Down(context.Background(), false); err != nil || labUp() {
			fatalf(t, "another haconf lab is up on this machine and it is not the demo's (%s), or it did not go down (%v): haconf-lab down --dir DIR (or haconf-lab compute down) first", DefaultDir, err)
		}
	}
	budget := 9 * time.Minute
	if dl, ok := t.Deadline(); ok && time.Until(dl)-30*time.Second < budget {
		budget = time.Until(dl) - 30*time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), budget)
	t.Cleanup(cancel)

	// haconf, haconf-agent (the resource agents) beside it, and haconf-lab
	// (the nodes' exec and fence agents, the fence daemon), as make build.
	binDir := t.TempDir()
	if _, err := run.Run(ctx, "go", "build", "-o", binDir+"/", "github.com/haconf/haconf/cmd/haconf", "github.com/haconf/haconf/cmd/haconf-agent", "github.com/haconf/haconf/cmd/haconf-lab"); err != nil {
		fatalf(t, "build haconf, haconf-agent and haconf-lab: %v", err)
	}
	dir, err := os.MkdirTemp("/var/tmp", "haconf-lab-test-")
	if err != nil {
		fatal(t, err)
	}
	l := &Lab{Dir: dir, Run: run, Binary: filepath.Join(binDir, "haconf"), LabBinary: filepath.Join(binDir, "haconf-lab"), Log: slog.New(slog.NewTextHandler(testWriter{t}, nil))}
	t.Cleanup(func() {
		if err := l.Down(context.Background(), true); err != nil {
			errorf(t, "cleanup: lab down: %v", err)
		}
		os.RemoveAll(dir)
	})
	return l, ctx
}

// maskRole drops the role bit of the current UUID (first field of get-gi).
func maskRole(gi string) string {
	cur, _, _ := strings.Cut(gi, ":")
	if cur == "" {
		return ""
	}
	last := cur[len(cur)-1]
	var v byte
	fmt.Sscanf(string(last), "%x", &v)
	return cur[:len(cur)-1] + fmt.Sprintf("%X", v&^1)
}

type execer struct {
	t   *testing.T
	ctx context.Context
	l   *Lab
}

func (x *execer) execIn(node, stdin string, argv ...string) ExecResult {
	x.t.Helper()
	return x.execFor(node, time.Minute, stdin, argv...)
}

// execFor is execIn with its own time limit, for commands that take
// minutes in a UML node of a loaded host (a bootstrap re-run: over a
// minute in a CI run, where the minute killed it).
func (x *execer) execFor(node string, d time.Duration, stdin string, argv ...string) ExecResult {
	x.t.Helper()
	c, err := x.l.Client()
	if err != nil {
		fatal(x.t, err)
	}
	ctx, cancel := context.WithTimeout(x.ctx, d)
	defer cancel()
	res, err := c.Exec(ctx, node, ExecRequest{Argv: argv, Stdin: []byte(stdin)})
	if err != nil {
		fatalf(x.t, "%s: %v: %v", node, argv, err)
	}
	return res
}

func (x *execer) exec(node string, argv ...string) ExecResult {
	x.t.Helper()
	return x.execIn(node, "", argv...)
}

// shIn runs script with sh -c in node, stdin on its input; it fails the test
// unless it exits 0, and returns its stdout.
func (x *execer) shIn(node, stdin, script string) string {
	x.t.Helper()
	res := x.execIn(node, stdin, "sh", "-c", script)
	if res.ExitCode != 0 {
		fatalf(x.t, "%s: %s: exit %d: %s%s", node, script, res.ExitCode, res.Stdout, res.Stderr)
	}
	return string(res.Stdout)
}

func (x *execer) sh(node, script string) string {
	x.t.Helper()
	return x.shIn(node, "", script)
}

// waitDRBD polls node's /proc/drbd until it contains want.
func (x *execer) waitDRBD(node, want string) {
	x.t.Helper()
	if last, ok := x.pollDRBD(node, want, time.Minute); !ok {
		fatalf(x.t, "%s: /proc/drbd never showed %q; last:\n%s", node, want, last)
	}
}

// pollDRBD reads node's /proc/drbd until it contains want or d passes.
func (x *execer) pollDRBD(node, want string, d time.Duration) (string, bool) {
	x.t.Helper()
	deadline := time.Now().Add(d)
	var last string
	for {
		last = x.sh(node, "cat /proc/drbd")
		if strings.Contains(last, want) {
			return last, true
		}
		if time.Now().After(deadline) {
			return last, false
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// saveDRBD saves a /proc/drbd capture named after the state it shows:
// proc-drbd-84-<connection state>-<local role><suffix>.txt.
func (x *execer) saveDRBD(procDRBD, suffix string) {
	x.t.Helper()
	cs, ro := field(procDRBD, "cs:"), field(procDRBD, "ro:")
	role, _, _ := strings.Cut(ro, "/")
	x.save(strings.ToLower("proc-drbd-84-"+cs+"-"+role+suffix+".txt"), procDRBD)
}

// field returns the value of the first " key" token in s (" cs:Connected" -> "Connected").
func field(s, key string) string {
	i := strings.Index(s, " "+key)
	if i < 0 {
		return "unknown"
	}
	v := s[i+1+len(key):]
	if j := strings.IndexAny(v, " \n"); j >= 0 {
		v = v[:j]
	}
	return v
}

func (x *execer) save(name, content string) {
	x.t.Helper()
	if !*capture {
		return
	}
	if err := os.WriteFile(capturePath(name), []byte(content), 0o644); err != nil {
		fatal(x.t, err)
	}
}

// capturePath is where a capture named name belongs: in the testdata of the
// package that parses that tool's output, once.
func capturePath(name string) string {
	switch {
	case strings.HasPrefix(name, "corosync-"):
		return fixtures.Path("pacemaker", "corosync/"+name)
	case strings.HasPrefix(name, "crm_mon-"):
		return fixtures.Path("pacemaker", "crmmon/captured-"+name)
	case strings.HasPrefix(name, "stonith_admin-"):
		return fixtures.Path("pacemaker", "captured-"+name)
	}
	return fixtures.Path("drbd", "captured-"+name)
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// corosyncConf is a two-link, two-node cluster on the lab networks (the
// shape haconf renders; written here so this test stands alone).
const corosyncConf = `totem {
	version: 2
	cluster_name: haconf-lab
	transport: knet
	token: 2000
	link_mode: passive
	crypto_cipher: none
	crypto_hash: none
	interface {
		linknumber: 0
	}
	interface {
		linknumber: 1
	}
}
nodelist {
	node {
		name: ctl1
		nodeid: 1
		ring0_addr: 10.251.0.11
		ring1_addr: 10.251.1.11
	}
	node {
		name: ctl2
		nodeid: 2
		ring0_addr: 10.251.0.12
		ring1_addr: 10.251.1.12
	}
}
quorum {
	provider: corosync_votequorum
	two_node: 1
}
logging {
	to_logfile: yes
	logfile: /var/log/corosync/corosync.log
	to_syslog: no
	to_stderr: no
	timestamp: on
}
`

// TestLabPacemakerFencing runs Corosync and Pacemaker in both nodes with a
// fence_haconf_lab device per node, cuts every link of ctl2, and checks
// that Pacemaker on ctl1 fences ctl2 for real: the host power-cycles it.
func TestLabPacemakerFencing(t *testing.T) {
	l, ctx := newTestLab(t)
	if err := l.Up(ctx); err != nil {
		fatalf(t, "lab up: %v", err)
	}
	x := &execer{t: t, ctx: ctx, l: l}
	for _, n := range []string{"ctl1", "ctl2"} {
		x.shIn(n, corosyncConf, "mkdir -p /var/log/corosync /var/log/pacemaker && cat > /etc/corosync/corosync.conf && corosync && (pacemakerd </dev/null >/var/log/pacemaker/start.log 2>&1 &)")
	}
	x.waitCrmMon("ctl1", `online="true"`, 2, 2*time.Minute)
	x.save("corosync-cfgtool-317-s-two-links-connected.txt", x.sh("ctl1", "corosync-cfgtool -s"))
	x.save("corosync-quorumtool-317-s-two-node-quorate.txt", x.sh("ctl1", "corosync-quorumtool -s"))

	for _, v := range []string{"ctl1", "ctl2"} {
		x.sh("ctl1", fmt.Sprintf(`cibadmin -C -o resources -X '<primitive id="fence-%[1]s" class="stonith" type="fence_haconf_lab">
  <instance_attributes id="fence-%[1]s-ia">
    <nvpair id="fence-%[1]s-hosts" name="pcmk_host_list" value="%[1]s"/>
    <nvpair id="fence-%[1]s-url" name="url" value="%[2]s"/>
  </instance_attributes>
  <operations><op id="fence-%[1]s-monitor" name="monitor" interval="30s"/></operations>
</primitive>'`, v, FencedURL()))
	}
	// ctl1 wins a fence race: fencing it waits 10 s.
	x.sh("ctl1", "crm_resource -r fence-ctl1 -p pcmk_delay_base -v 10s")
	x.sh("ctl1", "crm_attribute -t crm_config -n stonith-enabled -v true")
	x.waitCrmMon("ctl1", `role="Started"`, 2, 2*time.Minute)
	x.save("crm_mon-215-xml-two-online-fencing-started.xml", x.sh("ctl1", "crm_mon --output-as=xml"))

	before, _ := l.Running(Nodes[1])
	if err := l.Partition(ctx, "ctl2", LinkAll); err != nil {
		fatal(t, err)
	}
	start := time.Now()
	for {
		if pid, ok := l.Running(Nodes[1]); ok && pid != before {
			break
		}
		if time.Since(start) > 2*time.Minute {
			fatal(t, "Pacemaker did not fence ctl2 within 2 minutes of cutting its links")
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("ctl2 fenced (power-cycled by the host) %s after its links were cut", time.Since(start).Round(100*time.Millisecond))
	hist := x.sh("ctl1", "stonith_admin --history ctl2 --output-as=xml")
	if !strings.Contains(hist, `action="reboot" target="ctl2"`) || !strings.Contains(hist, `status="success"`) {
		errorf(t, "fencing history lacks a successful reboot of ctl2:\n%s", hist)
	}
	x.save("stonith_admin-215-history-xml-reboot-ctl2.xml", hist)
	x.waitCrmMon("ctl1", `online="false"`, 1, time.Minute)
	x.save("crm_mon-215-xml-peer-fenced-offline.xml", x.sh("ctl1", "crm_mon --output-as=xml"))
	x.save("corosync-cfgtool-317-s-peer-down.txt", x.sh("ctl1", "corosync-cfgtool -s"))

	if err := l.Heal(ctx); err != nil {
		fatal(t, err)
	}
	if err := l.waitAnswer(ctx, Nodes[1]); err != nil {
		fatal(t, err)
	}
}

// waitCrmMon polls `crm_mon --output-as=xml` in node until it has n
// occurrences of want.
func (x *execer) waitCrmMon(node, want string, n int, d time.Duration) {
	x.t.Helper()
	deadline := time.Now().Add(d)
	var last string
	for time.Now().Before(deadline) {
		res := x.exec(node, "crm_mon", "--output-as=xml")
		last = string(res.Stdout)
		if strings.Count(last, want) == n {
			return
		}
		time.Sleep(time.Second)
	}
	fatalf(x.t, "%s: crm_mon never showed %d x %s; last:\n%s", node, n, want, last)
}

// failureNotes keeps what made each lab test fail, to say it again as the
// test's last lines: CI shows the start and the end of a long failing
// test's output, and the nodes' diagnostics and the teardown's log pushed
// the message itself out of both.
var failureNotes sync.Map // *testing.T -> *[]string

func noteFailure(t *testing.T, msg string) {
	v, _ := failureNotes.LoadOrStore(t, new([]string))
	*v.(*[]string) = append(*v.(*[]string), msg)
}

func fatalf(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	noteFailure(t, msg)
	t.Fatal(msg)
}

func fatal(t *testing.T, args ...any) {
	t.Helper()
	msg := fmt.Sprint(args...)
	noteFailure(t, msg)
	t.Fatal(msg)
}

func errorf(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	noteFailure(t, msg)
	t.Error(msg)
}

// repeatFailures is a lab test's last cleanup: when it failed, its
// failures once more, shortened to their first lines.
func repeatFailures(t *testing.T) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		var b strings.Builder
		if v, ok := failureNotes.Load(t); ok {
			for _, msg := range *v.(*[]string) {
				if len(msg) > 2000 {
					msg = msg[:2000] + " [...]"
				}
				b.WriteString("\n  - " + msg)
			}
		} else {
			b.WriteString(" (see above)")
		}
		t.Logf("%s failed:%s", t.Name(), b.String())
	})
}
