package cloud

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/flavors"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/services"

	"github.com/haconf/haconf/internal/proc"
	"github.com/haconf/haconf/internal/runner"
	"github.com/haconf/haconf/internal/testenv"
)

// testDir is the test cloud's directory. It is kept (warm) between runs:
// only the first run on a machine pays the cold start.
const testDir = "/var/lib/haconf-cloud-test"

// TestCloud is the compute lab's end-to-end test, against a real Nova: one
// cloud with three hosts shared by the subtests, then down.
func TestCloud(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Nova control plane and three compute hosts")
	}
	ctx, c, cli, downed := newTestCloud(t, 25*time.Minute)

	start := time.Now()
	if err := c.Up(ctx, UpOptions{Hosts: 3}); err != nil {
		t.Fatalf("compute up: %v", err)
	}
	t.Logf("compute up (3 hosts) in %s", time.Since(start).Round(100*time.Millisecond))
	logRSS(t, c)

	nova := computeClient(ctx, t, c)

	t.Run("evacuate", func(t *testing.T) { testEvacuate(ctx, t, c, nova, cli) })
	t.Run("partition", func(t *testing.T) { testPartition(t, cli) })
	t.Run("fence agent", func(t *testing.T) { testFenceCLI(t, cli) })

	// haconf's compute failover: a fourth host, agents, the controller.
	start = time.Now()
	if err := c.Up(ctx, UpOptions{Hosts: 4, HA: true}); err != nil {
		t.Fatalf("compute up with haconf's failover: %v", err)
	}
	t.Logf("compute up (4 hosts, haconf failover) in %s", time.Since(start).Round(100*time.Millisecond))
	t.Run("failover", func(t *testing.T) { testFailover(ctx, t, c, nova, cli) })

	*downed = true
	start = time.Now()
	if err := c.Down(ctx, false); err != nil {
		t.Fatalf("compute down: %v", err)
	}
	t.Logf("compute down in %s", time.Since(start).Round(100*time.Millisecond))
	checkNothingLeft(ctx, t, c)
}

// cloudCLI runs haconf-lab compute ARGS on a test cloud: stdout, stderr,
// exit code.
type cloudCLI func(stdin string, args ...string) (string, string, int)

// newTestCloud checks what the compute lab needs, takes the lab lock,
// builds haconf-lab and haconf, and returns a context of the given budget
// counted from the moment the lock is held (waiting for another lab test
// must not eat the test's time), the test cloud (testDir, not started), its
// CLI, and a flag to set once the test took it down itself (otherwise
// cleanup does).
func newTestCloud(t *testing.T, budget time.Duration) (context.Context, *Cloud, cloudCLI, *bool) {
	t.Helper()
	testenv.RequireRoot(t)
	testenv.RequireCommands(t, "go", "ip", "mariadbd", "mariadb-install-db", "uwsgi-core", "keystone-manage", "nova-manage",
		"placement-manage", "nova-conductor", "nova-scheduler", "epmd", "ping", "dpkg-query", Python)
	if _, err := os.Stat("/usr/lib/rabbitmq/bin/rabbitmq-server"); err != nil {
		testenv.Missing(t, "rabbitmq-server is not installed (make deps)")
	}
	if _, err := exec.Command(Python, "-c", "import nova.virt.fake").CombinedOutput(); err != nil {
		testenv.Missing(t, "python3-nova is not installed (make deps)")
	}
	testenv.LockLab(t)
	if dl, ok := t.Deadline(); ok && time.Until(dl)-time.Minute < budget {
		budget = time.Until(dl) - time.Minute // leave cleanup its minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), budget)
	t.Cleanup(cancel)
	if hs := hostNamespaces(); len(hs) > 0 {
		t.Fatalf("another compute lab is up on this machine (namespace %s): haconf-lab compute down --dir DIR first", hs[0].Namespace())
	}
	bin := t.TempDir()
	if _, err := (runner.Exec{}).Run(ctx, "go", "build", "-o", bin+"/", "github.com/haconf/haconf/cmd/haconf-lab", "github.com/haconf/haconf/cmd/haconf"); err != nil {
		t.Fatalf("build haconf-lab and haconf: %v", err)
	}
	labBin := filepath.Join(bin, "haconf-lab")
	c := &Cloud{Dir: testDir, Run: runner.Exec{}, LabBinary: labBin, HaconfBinary: filepath.Join(bin, "haconf"), Log: slog.New(slog.NewTextHandler(testWriter{t}, nil))}
	downed := new(bool)
	t.Cleanup(func() {
		if !*downed {
			if err := c.Down(context.Background(), false); err != nil {
				t.Errorf("cleanup: compute down: %v", err)
			}
		}
	})
	// cli runs haconf-lab compute ARGS on the test cloud.
	cli := func(stdin string, args ...string) (string, string, int) {
		cmd := exec.CommandContext(ctx, labBin, append(append([]string{"compute"}, args...), "--dir", testDir)...)
		if args[0] == "fence" || args[0] == "exec" {
			cmd = exec.CommandContext(ctx, labBin, append([]string{"compute", args[0], "--dir", testDir}, args[1:]...)...)
		}
		cmd.Stdin = strings.NewReader(stdin)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatalf("haconf-lab compute %v: %v", args, err)
		}
		return out.String(), errb.String(), cmd.ProcessState.ExitCode()
	}

	return ctx, c, cli, downed
}

// computeClient is a gophercloud compute client for the cloud's admin,
// from the environment compute env prints.
func computeClient(ctx context.Context, t *testing.T, c *Cloud) *gophercloud.ServiceClient {
	s, err := c.Secrets()
	if err != nil {
		t.Fatal(err)
	}
	project, err := c.AdminProject()
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range Env(s, project) {
		t.Setenv(kv[0], kv[1])
	}
	opts, err := openstack.AuthOptionsFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	// gophercloud takes the user's domain from OS_DOMAIN_NAME only, which
	// the openstack CLI would read as a domain scope: env leaves it out.
	opts.DomainName = "Default"
	provider, err := openstack.NewClient(opts.IdentityEndpoint)
	if err != nil {
		t.Fatal(err)
	}
	provider.HTTPClient = *HTTPClient()
	if err := openstack.Authenticate(ctx, provider, opts); err != nil {
		t.Fatalf("authenticate: %v", err)
	}
	nova, err := openstack.NewComputeV2(provider, gophercloud.EndpointOpts{Region: Region})
	if err != nil {
		t.Fatal(err)
	}
	nova.Microversion = ComputeMicroversion
	return nova
}

// evacuate asks Nova to rebuild server id on a host the scheduler picks.
// Not servers.Evacuate: its EvacuateOpts always sends onSharedStorage,
// which Nova refuses from microversion 2.14 on, and it decodes a body
// (adminPass) that Nova no longer sends from 2.14 on (200, empty: EOF).
func evacuate(ctx context.Context, nova *gophercloud.ServiceClient, id string) error {
	_, err := nova.Post(ctx, nova.ServiceURL("servers", id, "action"), map[string]any{"evacuate": map[string]any{}}, nil,
		&gophercloud.RequestOpts{OkCodes: []int{200}})
	return err
}

// forcedDown sets forced_down either way (services.UpdateOpts omits false).
type forcedDown bool

func (f forcedDown) ToServiceUpdateMap() (map[string]any, error) {
	return map[string]any{"forced_down": bool(f)}, nil
}

func testEvacuate(ctx context.Context, t *testing.T, c *Cloud, nova *gophercloud.ServiceClient, cli func(string, ...string) (string, string, int)) {
	flavor := flavorID(ctx, t, nova)
	deleteAll(ctx, t, nova) // a warm state may hold an aborted run's servers
	defer deleteAll(ctx, t, nova)

	start := time.Now()
	var ids []string
	for i := range 10 {
		s, err := servers.Create(ctx, nova, servers.CreateOpts{Name: fmt.Sprintf("vm%02d", i), FlavorRef: flavor, ImageRef: ImageID, Networks: "none"}, nil).Extract()
		if err != nil {
			t.Fatalf("create server %d: %v", i, err)
		}
		ids = append(ids, s.ID)
	}
	placed := waitServers(ctx, t, nova, ids, "", 4*time.Minute)
	t.Logf("10 servers ACTIVE %s after the first POST: %v", time.Since(start).Round(100*time.Millisecond), countHosts(placed))
	if len(countHosts(placed)) < 2 {
		t.Fatalf("every server on one host: %v", countHosts(placed))
	}

	// The victim: the host with the most servers.
	victim := ""
	for h, n := range countHosts(placed) {
		if victim == "" || n > countHosts(placed)[victim] || (n == countHosts(placed)[victim] && h < victim) {
			victim = h
		}
	}
	var onVictim []string
	for id, h := range placed {
		if h == victim {
			onVictim = append(onVictim, id)
		}
	}
	// Power it off through the fence agent, as haconf will.
	if out, errs, code := cli("action=off\nplug="+victim+"\n", "fence"); code != FenceOK || !strings.Contains(out, "Powered OFF") {
		t.Fatalf("fence off %s: exit %d, %q %q", victim, code, out, errs)
	}
	if out, _, code := cli("action=status\nplug="+victim+"\n", "fence"); code != FenceOff || !strings.Contains(out, "Status: OFF") {
		t.Fatalf("fence status after off: exit %d, %q", code, out)
	}
	h, _ := ParseHost(victim)
	defer func() {
		if c.power(h) != PowerOn { // the test failed before it started the host
			c.Start(ctx, victim)
		}
	}()
	if pids, _ := c.namespacePids(ctx, h); len(pids) > 0 {
		t.Fatalf("processes left in %s after the power-off: %v", victim, pids)
	}

	start = time.Now()
	svc := computeServiceOf(ctx, t, nova, victim)
	if err := services.Update(ctx, nova, svc.ID, forcedDown(true)).Err; err != nil {
		t.Fatalf("force down %s: %v", victim, err)
	}
	for _, id := range onVictim {
		if err := evacuate(ctx, nova, id); err != nil {
			t.Fatalf("evacuate %s: %v", id, err)
		}
	}
	moved := waitServers(ctx, t, nova, onVictim, victim, 4*time.Minute)
	t.Logf("%d servers of %s ACTIVE elsewhere %s after the force-down: %v", len(onVictim), victim, time.Since(start).Round(100*time.Millisecond), countHosts(moved))

	// The host boots again; its nova-compute cleans up the evacuated
	// servers, then Nova accepts the unforce and reports it up.
	start = time.Now()
	if out, errs, code := cli("", "start", victim); code != 0 {
		t.Fatalf("compute start %s: exit %d %s %s", victim, code, out, errs)
	}
	err := waitFor(ctx, 3*time.Minute, victim+" up in Nova", func() (bool, error) {
		s := computeServiceOf(ctx, t, nova, victim)
		if s.ForcedDown {
			services.Update(ctx, nova, s.ID, forcedDown(false))
			return false, nil
		}
		return s.State == "up", nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s up again in Nova %s after start", victim, time.Since(start).Round(100*time.Millisecond))
}

func flavorID(ctx context.Context, t *testing.T, nova *gophercloud.ServiceClient) string {
	pages, err := flavors.ListDetail(nova, nil).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	all, err := flavors.ExtractFlavors(pages)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range all {
		if f.Name == FlavorName {
			return f.ID
		}
	}
	t.Fatalf("no flavor %s", FlavorName)
	return ""
}

func listServers(ctx context.Context, t *testing.T, nova *gophercloud.ServiceClient) []servers.Server {
	pages, err := servers.List(nova, servers.ListOpts{AllTenants: true}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	all, err := servers.ExtractServers(pages)
	if err != nil {
		t.Fatal(err)
	}
	return all
}

// waitServers waits until every server in ids is ACTIVE, with no task, on
// a host other than notOn, and returns each one's host.
func waitServers(ctx context.Context, t *testing.T, nova *gophercloud.ServiceClient, ids []string, notOn string, limit time.Duration) map[string]string {
	return waitServersIn(ctx, t, nova, ids, "ACTIVE", notOn, limit)
}

// waitServersIn waits until every server of ids has status, no task, and
// a host other than notOn; it returns each one's host.
func waitServersIn(ctx context.Context, t *testing.T, nova *gophercloud.ServiceClient, ids []string, status, notOn string, limit time.Duration) map[string]string {
	hosts := map[string]string{}
	err := waitFor(ctx, limit, "servers "+status, func() (bool, error) {
		byID := map[string]servers.Server{}
		for _, s := range listServers(ctx, t, nova) {
			byID[s.ID] = s
		}
		for _, id := range ids {
			s := byID[id]
			if s.Status == "ERROR" {
				return false, fmt.Errorf("server %s (%s) in ERROR: %+v", s.Name, id, s.Fault)
			}
			if s.Status != status || s.TaskState != "" || s.Host == "" || s.Host == notOn {
				return false, nil
			}
			hosts[id] = s.Host
		}
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return hosts
}

func countHosts(placed map[string]string) map[string]int {
	n := map[string]int{}
	for _, h := range placed {
		n[h]++
	}
	return n
}

func computeServiceOf(ctx context.Context, t *testing.T, nova *gophercloud.ServiceClient, host string) services.Service {
	pages, err := services.List(nova, services.ListOpts{Binary: "nova-compute", Host: host}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	all, err := services.ExtractServices(pages)
	if err != nil || len(all) != 1 {
		t.Fatalf("nova-compute service of %s: %v %v", host, all, err)
	}
	return all[0]
}

func deleteAll(ctx context.Context, t *testing.T, nova *gophercloud.ServiceClient) {
	for _, s := range listServers(ctx, t, nova) {
		servers.ForceDelete(ctx, nova, s.ID)
	}
	if err := waitFor(ctx, 2*time.Minute, "servers deleted", func() (bool, error) {
		return len(listServers(ctx, t, nova)) == 0, nil
	}); err != nil {
		t.Error(err)
	}
}

// testPartition cuts cmp2's management link, then its storage link, and
// checks from cmp1's namespace that only the other one still answers.
func testPartition(t *testing.T, cli func(string, ...string) (string, string, int)) {
	cmp2 := NewHost(2)
	reach := func(addr string) bool {
		_, _, code := cli("", "exec", "cmp1", "--", "ping", "-c1", "-W1", addr)
		return code == 0
	}
	for _, tc := range []struct {
		link          string
		mgmt, storage bool
	}{
		{"mgmt", false, true},
		{"storage", true, false},
		{"all", false, false},
	} {
		if out, errs, code := cli("", "partition", "cmp2", "--link", tc.link); code != 0 {
			t.Fatalf("partition cmp2 --link %s: exit %d %s %s", tc.link, code, out, errs)
		}
		if m, s := reach(cmp2.Mgmt.String()), reach(cmp2.Storage.String()); m != tc.mgmt || s != tc.storage {
			t.Errorf("cmp2 cut on %s: reachable from cmp1 on mgmt %v, storage %v; want %v, %v", tc.link, m, s, tc.mgmt, tc.storage)
		}
		if out, errs, code := cli("", "heal", "cmp2"); code != 0 {
			t.Fatalf("heal cmp2: exit %d %s %s", code, out, errs)
		}
		if !reach(cmp2.Mgmt.String()) || !reach(cmp2.Storage.String()) {
			t.Errorf("cmp2 not reachable on both links after heal (was cut on %s)", tc.link)
		}
	}
}

// testFenceCLI checks the fence agent's protocol as Pacemaker or haconf
// runs it: bad input gives a reason on stderr and exit 1.
func testFenceCLI(t *testing.T, cli func(string, ...string) (string, string, int)) {
	for _, tc := range []struct {
		stdin    string
		args     []string
		code     int
		out, err string
	}{
		{"action=status\nplug=cmp3\n", nil, FenceOK, "Status: ON", ""},
		{"action=list\n", nil, FenceOK, "cmp1,cmp1\ncmp2,cmp2\ncmp3,cmp3\n", ""},
		{"action=monitor\n", nil, FenceOK, "", ""},
		{"action=off\nplug=cmp9\n", nil, FenceFailed, "", "plug is not available"},
		{"action=off\nplug=ctl1\n", nil, FenceFailed, "", "plug is not available"},
		{"action=explode\nplug=cmp1\n", nil, FenceFailed, "", "Unrecognised action 'explode'"},
		{"action=off\n", nil, FenceFailed, "", "You have to enter plug"},
		{"", []string{"-o", "status", "-n", "cmp1"}, FenceOK, "Status: ON", ""},
		{"", []string{"--bogus"}, FenceFailed, "", "needs a value"},
	} {
		out, errs, code := cli(tc.stdin, append([]string{"fence"}, tc.args...)...)
		if code != tc.code || !strings.Contains(out, tc.out) || !strings.Contains(errs, tc.err) {
			t.Errorf("fence %q %v: exit %d, stdout %q, stderr %q; want %d, %q, %q", tc.stdin, tc.args, code, out, errs, tc.code, tc.out, tc.err)
		}
	}
}

// checkNothingLeft checks that down left no process, namespace, link,
// listener or mount of the cloud.
func checkNothingLeft(ctx context.Context, t *testing.T, c *Cloud) {
	if pids := Leftovers(c.Dir); len(pids) > 0 {
		t.Errorf("processes left after down: %v", pids)
	}
	if hs := hostNamespaces(); len(hs) > 0 {
		t.Errorf("namespaces left after down: %v", hs)
	}
	links, err := c.links(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var pairUp bool
	for name := range links {
		if strings.HasPrefix(name, "hccmp-") {
			t.Errorf("interface %s left after down", name)
		}
		pairUp = pairUp || strings.HasPrefix(name, "hclab-ctl")
	}
	for _, b := range bridges {
		if _, ok := links[b.Name]; ok && !pairUp {
			t.Errorf("bridge %s left after down, and the controller lab is not up", b.Name)
		}
	}
	if ls := listeners(t, ControlAddr.String()); len(ls) > 0 {
		t.Errorf("something still listens on %s after down: ports %v", ControlAddr, ls)
	}
	if b, err := os.ReadFile("/proc/self/mountinfo"); err == nil && strings.Contains(string(b), c.Dir) {
		t.Errorf("mounts under %s left after down", c.Dir)
	}
	if _, err := os.Stat(c.runDir()); err == nil {
		t.Errorf("%s left after down", c.runDir())
	}
}

// listeners lists the ports on which a TCP socket listens at addr, from
// /proc/net/tcp (without connecting: the address may be gone).
func listeners(t *testing.T, addr string) []int {
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		t.Fatal(err)
	}
	ip := net.ParseIP(addr).To4()
	local := fmt.Sprintf("%02X%02X%02X%02X", ip[3], ip[2], ip[1], ip[0])
	var ports []int
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 4 || f[3] != "0A" { // LISTEN
			continue
		}
		a, p, _ := strings.Cut(f[1], ":")
		if a != local {
			continue
		}
		var port int
		fmt.Sscanf(p, "%X", &port)
		ports = append(ports, port)
	}
	return ports
}

// logRSS logs the resident memory of the cloud's processes.
func logRSS(t *testing.T, c *Cloud) {
	var total int
	var names []string
	for _, name := range append(controlServices(false), "nova-cmp1", "nova-cmp2", "nova-cmp3") {
		pid, ok := c.running(name)
		if !ok {
			continue
		}
		kb := 0
		for _, p := range proc.Group(pid) {
			kb += rssKB(p)
		}
		total += kb
		names = append(names, fmt.Sprintf("%s %d MB", name, kb/1024))
	}
	sort.Strings(names)
	t.Logf("RSS %d MB: %s", total/1024, strings.Join(names, ", "))
}

func rssKB(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			var kb int
			fmt.Sscanf(strings.TrimSpace(v), "%d", &kb)
			return kb
		}
	}
	return 0
}

// testWriter sends log lines to the test's log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
