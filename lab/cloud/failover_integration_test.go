package cloud

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/services"

	"github.com/haconf/haconf/compute"
)

// testFailover is issue 16's end-to-end test on the real Nova: haconf's
// agents on four hosts and its controller on the lab host. A crashed host's
// servers run elsewhere, each evacuated once; a host that lost one link
// keeps its servers; a host whose fence fails keeps them until the fence
// works; a fenced host that boots again is given back to Nova.
func testFailover(ctx context.Context, t *testing.T, c *Cloud, nova *gophercloud.ServiceClient, cli func(string, ...string) (string, string, int)) {
	flavor := flavorID(ctx, t, nova)
	deleteAll(ctx, t, nova)
	defer deleteAll(ctx, t, nova)
	store := &compute.FileStore{Dir: c.HAStateDir()}
	haconf := func(args ...string) (string, int) {
		cmd := exec.CommandContext(ctx, c.HaconfBinary, append(args, "-c", c.HAConfigPath())...)
		out, _ := cmd.CombinedOutput()
		return string(out), cmd.ProcessState.ExitCode()
	}
	boot := func(host string, n int) []string {
		var ids []string
		for i := range n {
			s, err := servers.Create(ctx, nova, servers.CreateOpts{Name: fmt.Sprintf("%s-vm%02d", host, i), FlavorRef: flavor, ImageRef: ImageID,
				Networks: "none", AvailabilityZone: "nova:" + host}, nil).Extract()
			if err != nil {
				t.Fatalf("create server on %s: %v", host, err)
			}
			ids = append(ids, s.ID)
		}
		return ids
	}
	waitHostsInService(ctx, t, nova, "cmp1", "cmp2", "cmp3", "cmp4")
	onCmp1 := boot("cmp1", 6)
	onCmp3 := boot("cmp3", 3)
	boot("cmp2", 2)
	waitServers(ctx, t, nova, append(append([]string{}, onCmp1...), onCmp3...), "", 4*time.Minute)

	// One of cmp1's servers is stopped: it must stay stopped elsewhere.
	stopped := onCmp1[5]
	if err := servers.Stop(ctx, nova, stopped).ExtractErr(); err != nil {
		t.Fatalf("stop server %s: %v", stopped, err)
	}
	waitServersIn(ctx, t, nova, []string{stopped}, "SHUTOFF", "", 2*time.Minute)

	// What would happen: a target for each of cmp1's servers, none on cmp1.
	out, code := haconf("compute", "plan", "cmp1")
	t.Logf("haconf compute plan cmp1 (exit %d):\n%s", code, out)
	if code != 0 || !strings.Contains(out, "6 instances, 6 evacuable") || strings.Contains(out, "NONE") {
		t.Errorf("plan for cmp1: exit %d", code)
	}

	// A crash: every server of cmp1 ACTIVE elsewhere, each evacuated once.
	crashed := time.Now()
	if out, errs, code := cli("", "crash", "cmp1"); code != 0 {
		t.Fatalf("crash cmp1: %d %s %s", code, out, errs)
	}
	moved := waitServers(ctx, t, nova, onCmp1[:5], "cmp1", 3*time.Minute)
	t.Logf("5 running servers of cmp1 ACTIVE elsewhere %s after the crash: %v", time.Since(crashed).Round(100*time.Millisecond), countHosts(moved))
	for id, h := range waitServersIn(ctx, t, nova, []string{stopped}, "SHUTOFF", "cmp1", time.Minute) {
		moved[id] = h
	}
	t.Logf("the stopped one SHUTOFF elsewhere %s after the crash", time.Since(crashed).Round(100*time.Millisecond))
	// The controller sees each server ACTIVE at its next poll (1 s).
	var in *compute.Incident
	if err := waitFor(ctx, time.Minute, "cmp1's incident to end", func() (bool, error) {
		in = incidentOf(t, store, "cmp1")
		return in != nil && in.State.Closed(), nil
	}); err != nil || in.State != compute.StateDone {
		t.Fatalf("cmp1's incident: %v\n%s", err, summary(in))
	}
	t.Logf("incident %s:\n%s", in.ID, steps(in))
	for _, inst := range in.Instances {
		if inst.Attempts != 1 || inst.FinalHost == "cmp1" {
			t.Errorf("instance %+v: want one evacuation, off cmp1", inst)
		}
		if want := map[bool]string{true: "SHUTOFF", false: "ACTIVE"}[inst.ID == stopped]; inst.FinalState != want {
			t.Errorf("instance %+v: want it %s", inst, want)
		}
		if inst.Note != "" {
			t.Logf("instance %s: %s", inst.Name, inst.Note)
		}
	}
	out, code = haconf("compute", "status")
	t.Logf("haconf compute status (exit %d):\n%s", code, out)
	if !strings.Contains(out, "cmp1") || !strings.Contains(out, "failed") {
		t.Errorf("status does not show cmp1 failed")
	}

	// cmp1 boots again: haconf gives it back to Nova (Nova refuses the
	// unforce until its nova-compute restarted and cleaned up).
	if out, errs, code := cli("", "start", "cmp1"); code != 0 {
		t.Fatalf("start cmp1: %d %s %s", code, out, errs)
	}
	if err := waitFor(ctx, 3*time.Minute, "cmp1 given back to Nova", func() (bool, error) {
		s := computeServiceOf(ctx, t, nova, "cmp1")
		in := incidentOf(t, store, "cmp1")
		return !in.Recovered.IsZero() && !s.ForcedDown && s.Status == "enabled" && s.State == "up", nil
	}); err != nil {
		t.Fatal(err)
	}

	// One link cut: a warning, never an evacuation.
	for _, link := range []string{"storage", "mgmt"} {
		if out, errs, code := cli("", "partition", "cmp2", "--link", link); code != 0 {
			t.Fatalf("partition cmp2 %s: %d %s %s", link, code, out, errs)
		}
		if err := waitFor(ctx, time.Minute, "cmp2 link-down in haconf's status", func() (bool, error) {
			return hostCondition(t, c, "cmp2") == compute.LinkDown, nil
		}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Second) // longer than a host failure takes to act on
		if in := incidentOf(t, store, "cmp2"); in != nil {
			t.Fatalf("cmp2 lost its %s link only, and haconf opened %+v", link, in)
		}
		if out, errs, code := cli("", "heal", "cmp2"); code != 0 {
			t.Fatalf("heal cmp2: %d %s %s", code, out, errs)
		}
		if err := waitFor(ctx, time.Minute, "cmp2 healthy", func() (bool, error) {
			return hostCondition(t, c, "cmp2") == compute.Healthy, nil
		}); err != nil {
			t.Fatal(err)
		}
	}

	// A fence that fails: nothing moves until it works.
	wrapper, err := os.ReadFile(c.fenceWrapper())
	if err != nil {
		t.Fatal(err)
	}
	broken := strings.Replace(string(wrapper), "exec ", "echo 'Unable to connect/login to fencing device' >&2; exit 1; exec ", 1)
	if err := os.WriteFile(c.fenceWrapper(), []byte(broken), 0o700); err != nil {
		t.Fatal(err)
	}
	if out, errs, code := cli("", "crash", "cmp3"); code != 0 {
		t.Fatalf("crash cmp3: %d %s %s", code, out, errs)
	}
	if err := waitFor(ctx, time.Minute, "cmp3's fence to fail", func() (bool, error) {
		in := incidentOf(t, store, "cmp3")
		return in != nil && in.State == compute.StateFenceFailed, nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, s := range listServers(ctx, t, nova) {
		for _, id := range onCmp3 {
			if s.ID == id && (s.Host != "cmp3" || s.TaskState != "") {
				t.Errorf("server %s moved (%s, task %q) while cmp3's fence failed", s.Name, s.Host, s.TaskState)
			}
		}
	}
	if err := os.WriteFile(c.fenceWrapper(), wrapper, 0o700); err != nil {
		t.Fatal(err)
	}
	fixed := time.Now()
	waitServers(ctx, t, nova, onCmp3, "cmp3", 3*time.Minute)
	if err := waitFor(ctx, time.Minute, "cmp3's incident to end", func() (bool, error) {
		in = incidentOf(t, store, "cmp3")
		return in.State.Closed(), nil
	}); err != nil {
		t.Fatalf("%v\n%s", err, summary(in))
	}
	t.Logf("cmp3's servers ACTIVE elsewhere %s after its fence agent was repaired; incident:\n%s", time.Since(fixed).Round(100*time.Millisecond), steps(in))
	if in.FenceAttempts < 2 {
		t.Errorf("fence attempts %d", in.FenceAttempts)
	}
	if out, errs, code := cli("", "start", "cmp3"); code != 0 {
		t.Fatalf("start cmp3: %d %s %s", code, out, errs)
	}
	out, code = haconf("compute", "incidents")
	t.Logf("haconf compute incidents (exit %d):\n%s", code, out)
}

func incidentOf(t *testing.T, s *compute.FileStore, host string) *compute.Incident {
	t.Helper()
	ins, err := s.Incidents(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var last *compute.Incident
	for _, in := range ins {
		if in.Host == host {
			last = in
		}
	}
	return last
}

func hostCondition(t *testing.T, c *Cloud, host string) compute.Condition {
	data, err := os.ReadFile(filepath.Join(c.HAStateDir(), "status.json"))
	if err != nil {
		return ""
	}
	var st compute.Status
	if err := json.Unmarshal(data, &st); err != nil {
		t.Fatal(err)
	}
	for _, h := range st.Hosts {
		if h.Name == host {
			return h.Condition
		}
	}
	return ""
}

func summary(in *compute.Incident) string {
	if in == nil {
		return "no incident"
	}
	return in.Summary() + "\n" + steps(in)
}

func steps(in *compute.Incident) string {
	var b strings.Builder
	for _, s := range in.Steps {
		fmt.Fprintf(&b, "  %s %-10s %-8s %s %s\n", s.At.Format("15:04:05.000"), s.Name, s.Took.Round(time.Millisecond), s.Error, s.Detail)
	}
	return b.String()
}

// waitHostsInService waits until every host's nova-compute is up, enabled
// and not forced down. A warm state may keep a host an aborted run left
// fenced (haconf gives it back once it is healthy; after 30 s this does
// it as an operator would).
func waitHostsInService(ctx context.Context, t *testing.T, nova *gophercloud.ServiceClient, hosts ...string) {
	t.Helper()
	begin := time.Now()
	if err := waitFor(ctx, 2*time.Minute, "every host enabled and up in Nova", func() (bool, error) {
		ok := true
		for _, h := range hosts {
			s := computeServiceOf(ctx, t, nova, h)
			if s.ForcedDown || s.Status != "enabled" || s.State != "up" {
				ok = false
				if time.Since(begin) > 30*time.Second {
					services.Update(ctx, nova, s.ID, forcedDown(false))
					services.Update(ctx, nova, s.ID, services.UpdateOpts{Status: services.ServiceEnabled})
				}
			}
		}
		return ok, nil
	}); err != nil {
		t.Fatal(err)
	}
}
