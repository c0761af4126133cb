package status

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/haconf/haconf/backup"
	"github.com/haconf/haconf/drbd"
	"github.com/haconf/haconf/internal/runner"
	"github.com/haconf/haconf/pacemaker"
)

// fakeNode is ctl1 as its tools see it. It keeps the state of each layer
// (the name of a captured output) and renders the tools' output from it.
type fakeNode struct {
	t  *testing.T
	mu sync.Mutex

	cfgtool, quorumtool string // corosync fixture states
	corosyncDown        bool
	mon                 string // crm_mon fixture state
	drbd                string // /proc/drbd fixture state
	rabbitCluster       string
	rabbitPolicies      string
	rabbitQueues        string
	vipHere             bool
	crmConfig           string            // cibadmin --query --scope crm_config ("" fails)
	ntpSynchronized     string            // timedatectl's answer ("" fails: no systemd)
	clockdiff           string            // clockdiff's capture
	bmcs                map[string]string // fence agent's answer by BMC address: on, off, or a capture
	// hang makes a command block, ignoring its context, until release
	// is closed.
	hang    map[string]bool
	release chan struct{}
	calls   []string
}

func newFakeNode(t *testing.T) *fakeNode {
	n := &fakeNode{t: t, cfgtool: "two-links-connected", quorumtool: "two-node-quorate", mon: "healthy", drbd: "connected-primary",
		rabbitCluster: "two-running", rabbitPolicies: "ha-all", rabbitQueues: "mirrored-synced", vipHere: true,
		ntpSynchronized: "yes", clockdiff: "clockdiff-20221126-same-clock.stdout",
		bmcs: map[string]string{"192.0.2.111": "on", "192.0.2.112": "on"},
		hang: map[string]bool{}, release: make(chan struct{})}
	t.Cleanup(func() { close(n.release) })
	return n
}

func (n *fakeNode) Run(ctx context.Context, name string, args ...string) ([]byte, error) {
	n.mu.Lock()
	n.calls = append(n.calls, name+" "+strings.Join(args, " "))
	hang := n.hang[name]
	n.mu.Unlock()
	if hang {
		<-n.release
		return nil, fmt.Errorf("%s: released", name)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	fail := func(code int, stderr string) ([]byte, error) {
		return nil, &runner.Error{Argv: append([]string{name}, args...), ExitCode: code, Stderr: stderr, Err: fmt.Errorf("exit status %d", code)}
	}
	switch name {
	case "corosync-cfgtool":
		if n.corosyncDown {
			return fail(1, "Could not initialize corosync configuration API error 2")
		}
		return fixture(n.t, "corosync", "corosync-cfgtool-317-s-"+n.cfgtool+".txt"), nil
	case "corosync-quorumtool":
		if n.corosyncDown {
			return fail(1, "Cannot initialize CMAP service")
		}
		out := fixture(n.t, "corosync", "corosync-quorumtool-317-s-"+n.quorumtool+".txt")
		if bytes.Contains(out, []byte("Quorate:          No")) {
			return out, &runner.Error{Argv: []string{name, "-s"}, ExitCode: 2, Err: fmt.Errorf("exit status 2")}
		}
		return out, nil
	case "crm_mon":
		return fixture(n.t, "crm_mon", n.mon+".xml"), nil
	case "cibadmin":
		if n.crmConfig == "" {
			return fail(1, "cibadmin: Signon to CIB failed")
		}
		return []byte(n.crmConfig), nil
	case "cat":
		return fixture(n.t, "drbd", "proc-drbd-84-"+n.drbd+".txt"), nil
	case "rabbitmqctl":
		switch args[1] {
		case "cluster_status":
			return rabbitFixture(n.t, "cluster_status-"+n.rabbitCluster), nil
		case "list_policies":
			return rabbitFixture(n.t, "list_policies-"+n.rabbitPolicies), nil
		case "list_queues":
			return rabbitFixture(n.t, "list_queues-"+n.rabbitQueues), nil
		}
	case "timedatectl":
		if n.ntpSynchronized == "" {
			return nil, &runner.Error{Argv: append([]string{name}, args...), ExitCode: 1,
				Stderr: string(fixture(n.t, "clock", "timedatectl-252-show-ntpsynchronized-no-systemd.stderr")), Err: fmt.Errorf("exit status 1")}
		}
		return []byte(n.ntpSynchronized + "\n"), nil
	case "clockdiff":
		if strings.HasSuffix(n.clockdiff, ".stderr") {
			return fail(1, string(fixture(n.t, "clock", n.clockdiff)))
		}
		return fixture(n.t, "clock", n.clockdiff), nil
	case "ip":
		out := "1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever\n" +
			"2: eth0    inet 192.0.2.11/24 brd 192.0.2.255 scope global eth0\\       valid_lft forever preferred_lft forever\n"
		if n.vipHere {
			out += "2: eth0    inet 192.0.2.10/24 brd 192.0.2.255 scope global secondary eth0\\       valid_lft forever preferred_lft forever\n"
		}
		return []byte(out), nil
	}
	return fail(127, "no such command in the fake: "+name)
}

// RunCmd runs the fence agents: their options on stdin, the BMC's answer
// from a capture.
func (n *fakeNode) RunCmd(ctx context.Context, c runner.Cmd) ([]byte, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.calls = append(n.calls, c.Name+" "+strings.Join(c.Args, " "))
	ip := ""
	for _, l := range strings.Split(string(c.Stdin), "\n") {
		if v, ok := strings.CutPrefix(l, "ip="); ok {
			ip = v
		}
	}
	argv := append([]string{c.Name}, c.Args...)
	switch bmc := n.bmcs[ip]; bmc {
	case "on":
		return fixture(n.t, "pacemaker", "fence/fence_ipmilan-4121-status-on.stdout"), nil
	case "off":
		return fixture(n.t, "pacemaker", "fence/fence_ipmilan-4121-status-off.stdout"), &runner.Error{Argv: argv, ExitCode: 2, Err: fmt.Errorf("exit status 2")}
	default:
		return nil, &runner.Error{Argv: argv, ExitCode: 1, Stderr: string(fixture(n.t, "pacemaker", "fence/"+bmc)), Err: fmt.Errorf("exit status 1")}
	}
}

// passwordFile is a BMC password file as the fence probe sees it.
type passwordFile struct{ mode fs.FileMode }

func (f passwordFile) Name() string       { return "" }
func (f passwordFile) Size() int64        { return 0 }
func (f passwordFile) Mode() fs.FileMode  { return f.mode }
func (f passwordFile) ModTime() time.Time { return time.Time{} }
func (f passwordFile) IsDir() bool        { return false }
func (f passwordFile) Sys() any           { return nil }

// exampleFencing is the example configuration's BMCs.
var exampleFencing = pacemaker.FencingConfig{Type: pacemaker.FenceIPMI, IPMI: map[string]pacemaker.IPMI{
	"ctl1": {Address: "192.0.2.111", User: "admin", PasswordFile: "/etc/haconf/ipmi-ctl1.pass"},
	"ctl2": {Address: "192.0.2.112", User: "admin", PasswordFile: "/etc/haconf/ipmi-ctl2.pass"},
}}

func (n *fakeNode) set(f func(n *fakeNode)) {
	n.mu.Lock()
	defer n.mu.Unlock()
	f(n)
}

type fakeMySQL struct{ facts MySQLFacts }

func (f fakeMySQL) Probe(context.Context) MySQLFacts { return f.facts }

type fakeBackup struct{ facts BackupFacts }

func (f fakeBackup) LastBackup(context.Context) (BackupFacts, error) { return f.facts, nil }

func collectors(n *fakeNode) Collectors {
	return Collectors{
		Node:   "ctl1",
		Expect: healthyPair(n.t).Expect,
		Run:    n,
		DRBD:   &drbd.Node{Name: "ctl1", Run: n, Config: drbd.Config{Resource: "r0", Device: "/dev/drbd0"}},
		MySQL:  fakeMySQL{MySQLFacts{Address: "192.0.2.10:3306", Reachable: true, Version: "10.11.6-MariaDB"}},
		Backup: fakeBackup{BackupFacts{Repository: "/var/backups/haconf", LastSuccess: now.Add(-3 * time.Hour), LastID: "20261121T090000.000Z-diff", LastType: "differential"}},
		Fence: FenceProbe{Devices: exampleFencing.Devices([]string{"ctl1", "ctl2"}), Run: n,
			Stat: func(string) (fs.FileInfo, error) { return passwordFile{0o600}, nil }},
		Peer: "ctl2", PeerAddr: "192.0.2.12",
		Now: func() time.Time { return now },
	}
}

func TestCollectAndAssess(t *testing.T) {
	n := newFakeNode(t)
	c := collectors(n)
	ctx := context.Background()

	r := Assess(c.Collect(ctx))
	if r.Verdict != Healthy {
		t.Fatalf("healthy pair: %s", r.Headline())
	}

	n.set(func(n *fakeNode) { n.cfgtool, n.quorumtool = "link1-down", "link1-down" })
	r = Assess(c.Collect(ctx))
	if r.Verdict != Degraded || !strings.Contains(r.Headline(), "link 1 to ctl2 is down") {
		t.Errorf("link down: %s", r.Headline())
	}

	// ctl1 alone after a restart: quorumtool exits 2 but its report counts.
	n.set(func(n *fakeNode) { n.cfgtool, n.quorumtool = "both-links-down", "alone-wait-for-all" })
	s := c.Collect(ctx)
	if s.Corosync.Quorum == nil || s.Corosync.Quorum.Quorate || s.Corosync.Error != "" {
		t.Errorf("quorum %+v", s.Corosync)
	}
	if l := Assess(s).Layers[0]; l.State != StateDown || !strings.Contains(l.Findings[0].Message, "waiting for ctl2: this node booted alone") {
		t.Errorf("alone after a restart: %+v", l)
	}

	n.set(func(n *fakeNode) { n.corosyncDown = true })
	s = c.Collect(ctx)
	if l := Assess(s).Layers[0]; l.State != StateUnknown || !strings.Contains(l.Findings[0].Message, "Could not initialize corosync") {
		t.Errorf("corosync down: %+v", l)
	}
}

func TestCollectHungToolTimesOut(t *testing.T) {
	n := newFakeNode(t)
	n.hang["crm_mon"] = true
	n.hang["rabbitmqctl"] = true
	c := collectors(n)
	c.Timeout = 50 * time.Millisecond
	start := time.Now()
	s := c.Collect(context.Background())
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Collect took %s with hung tools", d)
	}
	if s.Pacemaker.Error != "timed out after 50ms" || s.RabbitMQ.Error != "timed out after 50ms" {
		t.Errorf("errors: pacemaker %q rabbitmq %q", s.Pacemaker.Error, s.RabbitMQ.Error)
	}
	if s.Corosync.Links == nil || s.DRBD.Status == nil {
		t.Errorf("other collectors did not run: %+v %+v", s.Corosync, s.DRBD)
	}
	r := Assess(s)
	if r.Verdict != Degraded {
		t.Errorf("verdict %s", r.Headline())
	}
}

func TestRender(t *testing.T) {
	n := newFakeNode(t)
	n.mon = "mariadb-disabled"
	n.vipHere = false
	c := collectors(n)
	c.MySQL = fakeMySQL{MySQLFacts{Address: "192.0.2.10:3306", Problem: "dial tcp 192.0.2.10:3306: connect: connection refused"}}
	s := c.Collect(context.Background())
	r := Assess(s)
	var b bytes.Buffer
	if err := r.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	first, _, _ := strings.Cut(out, "\n")
	squeeze := func(s string) string {
		var lines []string
		for _, l := range strings.Split(s, "\n") {
			lines = append(lines, strings.Join(strings.Fields(l), " "))
		}
		return strings.Join(lines, "\n")
	}
	if !strings.HasPrefix(first, "DOWN: pacemaker: mariadb is stopped: mariadb is disabled (target-role=Stopped)") {
		t.Errorf("verdict line %q", first)
	}
	for _, want := range []string{
		"LAYER      STATE     SUMMARY",
		"corosync   ok        quorate, members 2/2, link 0 up, link 1 up",
		"mysql      down      NOT reachable at 192.0.2.10:3306",
		"rabbitmq   ok        running on rabbit@ctl1, rabbit@ctl2; policy ha-all (all, sync automatic); 4 queues, 3 mirrored, 3 synced",
		"mariadb        Stopped     -          mariadb is disabled (target-role=Stopped)",
		"vip Stopped - it starts after mariadb, which is stopped: mariadb is disabled (target-role=Stopped)",
		"DOWN     vip: VIP 192.0.2.10 is on no node: it starts after mariadb, which is stopped: mariadb is disabled",
	} {
		if !strings.Contains(squeeze(out), squeeze(want)) {
			t.Errorf("text lacks %q:\n%s", want, out)
		}
	}

	r.Facts = &s
	data, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var back struct {
		Verdict string `json:"verdict"`
		Layers  []struct {
			Name  string `json:"name"`
			State string `json:"state"`
		} `json:"layers"`
		Facts struct {
			MySQL struct {
				Problem string `json:"problem"`
			} `json:"mysql"`
			Pacemaker struct {
				TargetRoles map[string]string `json:"target_roles"`
			} `json:"pacemaker"`
		} `json:"facts"`
	}
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if back.Verdict != "DOWN" || len(back.Layers) != 9 || back.Facts.MySQL.Problem == "" || back.Facts.Pacemaker.TargetRoles["mariadb"] != "Stopped" {
		t.Errorf("json %s", data)
	}
}

func TestHasAddress(t *testing.T) {
	out := []byte("2: eth0    inet 192.0.2.100/24 brd 192.0.2.255 scope global eth0\\ valid_lft forever\n" +
		"2: eth0    inet 192.0.2.10/24 scope global secondary eth0\\ valid_lft forever\n")
	for addr, want := range map[string]bool{"192.0.2.10": true, "192.0.2.100": true, "192.0.2.1": false, "": false} {
		if got := hasAddress(out, addr); got != want {
			t.Errorf("hasAddress(%q) = %v", addr, got)
		}
	}
}

func TestBackupMaxAge(t *testing.T) {
	tests := []struct {
		schedules []string
		want      time.Duration
	}{
		{[]string{"0 2 * * 0", "0 2 * * 1-6"}, 26 * time.Hour},
		{[]string{"0 2 * * 0", ""}, 7*24*time.Hour + 2*time.Hour},
		{[]string{"", ""}, 0},
		{[]string{"not cron"}, 0},
	}
	for _, tt := range tests {
		if got := BackupMaxAge(now, tt.schedules...); got != tt.want {
			t.Errorf("BackupMaxAge(%q) = %s, want %s", tt.schedules, got, tt.want)
		}
	}
}

func TestBackupRepo(t *testing.T) {
	dir := t.TempDir()
	repo := BackupRepo{Dir: dir}
	f, err := repo.LastBackup(context.Background())
	if err != nil || !f.LastSuccess.IsZero() || f.Repository != dir {
		t.Fatalf("empty repository: %+v %v", f, err)
	}
	state := `{"full":{"last_success":"2026-11-15T02:00:00Z","last_attempt":"2026-11-15T02:00:00Z","last_result":"20261115T020000.000Z-full"},
"differential":{"last_success":"2026-11-20T02:00:00Z","last_attempt":"2026-11-21T02:00:00Z","last_error":"access denied"}}`
	if err := os.WriteFile(filepath.Join(dir, "state.json"), []byte(state), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err = repo.LastBackup(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !f.LastSuccess.Equal(time.Date(2026, 11, 20, 2, 0, 0, 0, time.UTC)) || f.LastError != "differential: access denied" ||
		!f.LastAttempt.Equal(time.Date(2026, 11, 21, 2, 0, 0, 0, time.UTC)) {
		t.Errorf("facts %+v", f)
	}
	if err := os.WriteFile(filepath.Join(dir, "state.json"), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := repo.LastBackup(context.Background()); err == nil {
		t.Error("corrupt state.json read")
	}
}

func TestMySQLProbe(t *testing.T) {
	dir := t.TempDir()
	p := MySQLProbe{Addr: "127.0.0.1:1", CredentialsFile: filepath.Join(dir, "missing.cnf")}
	if f := p.Probe(context.Background()); f.Error == "" || f.Reachable {
		t.Errorf("missing credentials: %+v", f)
	}
	cnf := filepath.Join(dir, "mysql.cnf")
	if err := os.WriteFile(cnf, []byte("[client]\nuser=haconf\npassword=s3cret-value\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p.CredentialsFile = cnf
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	f := p.Probe(ctx) // nothing listens on 127.0.0.1:1
	if f.Reachable || f.Problem == "" || f.Error != "" {
		t.Errorf("refused: %+v", f)
	}
	if data, _ := json.Marshal(f); bytes.Contains(data, []byte("s3cret-value")) {
		t.Errorf("password in facts: %s", data)
	}
}

// While maintenance-mode is on, status reads the cluster properties to say
// who set it and when it ends; when they cannot be read it still reports it.
func TestCollectMaintenanceWindow(t *testing.T) {
	n := newFakeNode(t)
	n.mon = "maintenance"
	c := collectors(n)
	if s := c.Collect(context.Background()); s.Pacemaker.Maintenance != nil || s.Pacemaker.Error != "" {
		t.Fatalf("unreadable properties: maintenance %+v, error %q", s.Pacemaker.Maintenance, s.Pacemaker.Error)
	}
	n.set(func(n *fakeNode) {
		n.crmConfig = "<crm_config>" + string(pacemaker.MaintenanceSet(now.Add(45*time.Minute))) + "</crm_config>"
	})
	s := c.Collect(context.Background())
	want := pacemaker.MaintenanceState{On: true, Source: pacemaker.SourceHaconf, SetID: pacemaker.MaintenanceSetID, Until: now.Add(45 * time.Minute)}
	if s.Pacemaker.Maintenance == nil || *s.Pacemaker.Maintenance != want {
		t.Fatalf("maintenance = %+v", s.Pacemaker.Maintenance)
	}
	if r := Assess(s); !strings.Contains(strings.Join(r.Reasons, "; "), "maintenance-mode is on until 2026-11-21 12:45:00Z") {
		t.Errorf("reasons %q", r.Reasons)
	}
	// Not in maintenance: the properties are not read.
	n.set(func(n *fakeNode) { n.mon = "healthy"; n.calls = nil })
	c.Collect(context.Background())
	for _, call := range n.calls {
		if strings.HasPrefix(call, "cibadmin") {
			t.Errorf("read the properties while not in maintenance: %s", call)
		}
	}
}

func TestBackupRepoChain(t *testing.T) {
	dir := t.TempDir()
	at := time.Date(2026, 11, 15, 2, 0, 0, 0, time.UTC)
	write := func(id string, kind backup.Kind, base string, finished time.Time) {
		t.Helper()
		data, _ := json.Marshal(backup.Manifest{Format: backup.FormatVersion, ID: id, Type: kind, Base: base, Finished: finished})
		sum := sha256.Sum256(data)
		if err := os.MkdirAll(filepath.Join(dir, id), 0o700); err != nil {
			t.Fatal(err)
		}
		for name, b := range map[string][]byte{"manifest.json": data, "manifest.json.sha256": []byte(hex.EncodeToString(sum[:]) + "  manifest.json\n")} {
			if err := os.WriteFile(filepath.Join(dir, id, name), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	write("20261108T020000.000Z-full", backup.Full, "", at.Add(-7*24*time.Hour))
	write("20261109T020000.000Z-diff", backup.Differential, "20261108T020000.000Z-full", at.Add(-6*24*time.Hour))
	write("20261115T020000.000Z-full", backup.Full, "", at)
	write("20261116T020000.000Z-diff", backup.Differential, "20261115T020000.000Z-full", at.Add(24*time.Hour))
	write("20261117T020000.000Z-diff", backup.Differential, "20261115T020000.000Z-full", at.Add(48*time.Hour))
	if err := os.WriteFile(filepath.Join(dir, "20261109T020000.000Z-diff", "manifest.json"), []byte(`{"id":`), 0o600); err != nil {
		t.Fatal(err)
	}
	state := `{"differential":{"last_success":"2026-11-17T02:00:00Z","last_attempt":"2026-11-17T02:00:00Z","last_result":"20261117T020000.000Z-diff","last_note":"took a full instead of a differential: purged"}}`
	if err := os.WriteFile(filepath.Join(dir, "state.json"), []byte(state), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := BackupRepo{Dir: dir}.LastBackup(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := &BackupChain{Full: "20261115T020000.000Z-full", FullFinished: at, Differentials: 2, LastDifferential: "20261117T020000.000Z-diff"}
	if !reflect.DeepEqual(f.Chain, want) || !reflect.DeepEqual(f.Damaged, []string{"20261109T020000.000Z-diff"}) ||
		f.LastID != "20261117T020000.000Z-diff" || !strings.Contains(f.LastNote, "purged") {
		t.Fatalf("facts %+v, chain %+v", f, f.Chain)
	}

	// Off-host copies: vault holds everything up to the first
	// differential and failed since; peer never got anything.
	copies := `{"vault":{"last_success":"2026-11-16T03:00:00Z","last_attempt":"2026-11-17T03:00:00Z","last_error":"connection refused","up_to":"20261116T020000.000Z-diff"}}`
	if err := os.WriteFile(filepath.Join(dir, "copies.json"), []byte(copies), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err = BackupRepo{Dir: dir, Copies: []string{"vault", "peer"}}.LastBackup(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	wantCopies := []BackupCopy{
		{Target: "vault", LastSuccess: time.Date(2026, 11, 16, 3, 0, 0, 0, time.UTC), LastAttempt: time.Date(2026, 11, 17, 3, 0, 0, 0, time.UTC), LastError: "connection refused", Uncopied: at.Add(48 * time.Hour)},
		{Target: "peer", Uncopied: at.Add(-7 * 24 * time.Hour)},
	}
	if !reflect.DeepEqual(f.Copies, wantCopies) {
		t.Fatalf("copies %+v\nwant %+v", f.Copies, wantCopies)
	}
}

// status asks each BMC through its fence agent, reads the clock's state
// and measures the peer's clock, and shows what they said.
func TestCollectFenceAndClock(t *testing.T) {
	n := newFakeNode(t)
	c := collectors(n)
	ctx := context.Background()
	s := c.Collect(ctx)
	if len(s.Fencing.Devices) != 2 || s.Fencing.Devices[1].Power != pacemaker.PowerOn || s.Clock.PeerOffsetMS == nil || *s.Clock.PeerOffsetMS != 0 {
		t.Fatalf("facts: %+v %+v", s.Fencing, s.Clock)
	}
	r := Assess(s)
	for _, l := range r.Layers {
		if l.Name == LayerFencing && !strings.HasSuffix(l.Summary, "devices answer: ctl1 on, ctl2 on") ||
			l.Name == LayerClock && l.Summary != "synchronised (timedatectl), ctl2 within 1ms" {
			t.Errorf("%s: %q", l.Name, l.Summary)
		}
	}
	for _, call := range n.calls {
		if strings.HasPrefix(call, "fence_ipmilan") && call != "fence_ipmilan " {
			t.Errorf("a fence agent got arguments: %q", call)
		}
	}

	n.set(func(n *fakeNode) {
		n.bmcs["192.0.2.112"] = "fence_ipmilan-4121-status-wrong-password.stderr"
		n.ntpSynchronized = ""
		n.clockdiff = "clockdiff-20221126-peer-behind-1500ms.stdout"
	})
	r = Assess(c.Collect(ctx))
	for _, want := range []string{
		"fencing: fence-ctl2 (fence_ipmilan, from ctl1): Failed: Unable to obtain correct plug status or plug is not available: ctl2 cannot be fenced",
		"clock: ctl2's clock is 1.5s behind ctl1's",
	} {
		if !strings.Contains(strings.Join(r.Reasons, "\n"), want) {
			t.Errorf("no reason %q:\n%s", want, strings.Join(r.Reasons, "\n"))
		}
	}

	// A password file that is missing or others can read: the agent is
	// not run, status says why.
	p := FenceProbe{Devices: exampleFencing.Devices([]string{"ctl1", "ctl2"}), Run: n, Stat: func(name string) (fs.FileInfo, error) {
		if strings.HasSuffix(name, "ctl1.pass") {
			return nil, fs.ErrNotExist
		}
		return passwordFile{0o644}, nil
	}}
	f := p.Probe(ctx)
	if got := f.Devices[0].Error; got != "its password file /etc/haconf/ipmi-ctl1.pass is missing (haconf bootstrap installs it from fence_passwords.ctl1 in the secrets file)" {
		t.Errorf("missing: %q", got)
	}
	if got := f.Devices[1].Error; got != "its password file /etc/haconf/ipmi-ctl2.pass is readable by group or others (mode -rw-r--r--): chmod 600 it" {
		t.Errorf("exposed: %q", got)
	}
}
