package cloud

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/services"

	"github.com/haconf/haconf/compute"
)

// TestComputeBench is bench/compute/run: issue 16's measurement of
// compute-node failover in the compute lab, haconf and Masakari side by
// side on the same cloud. Each round: 20 servers on the victim (cmp1) and
// 10 on the others, the victim powered off (compute crash), then every
// server of the victim watched in Nova until it is ACTIVE on another host.
// haconf's rounds read the phases from its incident; Masakari's are given
// the host-failure notification the moment the host dies (no detection
// time at all: a head start), once with its defaults and once with its
// fastest settings, while haconf holds the victim in maintenance.
//
// HACONF_COMPUTE_BENCH_ROUNDS=N haconf rounds (the test skips without it),
// HACONF_COMPUTE_BENCH_MASAKARI=M rounds per Masakari setting (default 1,
// 0 for none), HACONF_COMPUTE_BENCH_RESULTS=FILE appends one JSON line per
// round.
func TestComputeBench(t *testing.T) {
	rounds, _ := strconv.Atoi(os.Getenv("HACONF_COMPUTE_BENCH_ROUNDS"))
	if rounds <= 0 {
		t.Skip("a benchmark (bench/compute/run): HACONF_COMPUTE_BENCH_ROUNDS=N runs it")
	}
	masakariRounds := 1
	if v := os.Getenv("HACONF_COMPUTE_BENCH_MASAKARI"); v != "" {
		masakariRounds, _ = strconv.Atoi(v)
	}
	ctx, c, cli, downed := newTestCloud(t, time.Duration(20+rounds*6+masakariRounds*30)*time.Minute)
	start := time.Now()
	if err := c.Up(ctx, UpOptions{Hosts: 4, HA: true, Masakari: masakariRounds > 0}); err != nil {
		t.Fatalf("compute up: %v", err)
	}
	t.Logf("compute up (4 hosts, haconf, masakari %v) in %s", masakariRounds > 0, time.Since(start).Round(100*time.Millisecond))
	b := &bench{t: t, ctx: ctx, c: c, cli: cli, nova: computeClient(ctx, t, c), victim: "cmp1", flavor: ""}
	b.flavor = flavorID(ctx, t, b.nova)
	// nova-api's first listing after a start can take over a minute (seen
	// with masakari starting beside it): wait for it before the rounds.
	if err := waitFor(ctx, 5*time.Minute, "nova-api to list servers", func() (bool, error) {
		_, err := servers.List(b.nova, servers.ListOpts{AllTenants: true}).AllPages(ctx)
		return err == nil, nil
	}); err != nil {
		t.Fatal(err)
	}
	deleteAll(ctx, t, b.nova)
	waitHostsInService(ctx, t, b.nova, "cmp1", "cmp2", "cmp3", "cmp4")

	for r := 1; r <= rounds; r++ {
		b.record(b.haconfRound(r))
	}
	if masakariRounds > 0 {
		b.masakariSetup()
		for _, m := range []struct {
			tool string
			opts map[string]string
		}{
			{"masakari (defaults)", nil},
			// Masakari's own knob for speed: no wait after disabling the
			// service (default 180 s).
			{"masakari (fastest)", map[string]string{"wait_period_after_service_update": "0"}},
		} {
			if err := c.SetMasakari(m.opts); err != nil {
				t.Fatal(err)
			}
			for r := 1; r <= masakariRounds; r++ {
				b.record(b.masakariRound(m.tool, r))
			}
		}
	}
	*downed = true
	if err := c.Down(ctx, false); err != nil {
		t.Errorf("compute down: %v", err)
	}
}

// bench is one benchmark run on the test cloud.
type bench struct {
	t      *testing.T
	ctx    context.Context
	c      *Cloud
	cli    cloudCLI
	nova   *gophercloud.ServiceClient
	victim string
	flavor string
	// Masakari's segment and the victim's host id in it.
	segment, masakariHost string
	lastNotification      time.Time
}

func (b *bench) record(r BenchRound) {
	b.t.Logf("round: %+v", r)
	path := os.Getenv("HACONF_COMPUTE_BENCH_RESULTS")
	if path == "" {
		return
	}
	line, _ := json.Marshal(r)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		b.t.Fatal(err)
	}
	defer f.Close()
	fmt.Fprintf(f, "%s\n", line)
}

// boot starts 20 servers on the victim and 10 on the others and waits
// until they are ACTIVE; it returns the victim's.
func (b *bench) boot() []string {
	t := b.t
	var onVictim, all []string
	for i := range 30 {
		host := b.victim
		if i >= 20 {
			host = fmt.Sprintf("cmp%d", 2+i%3)
		}
		s, err := servers.Create(b.ctx, b.nova, servers.CreateOpts{Name: fmt.Sprintf("bench-%s-%02d", host, i), FlavorRef: b.flavor,
			ImageRef: ImageID, Networks: "none", AvailabilityZone: "nova:" + host}, nil).Extract()
		if err != nil {
			t.Fatalf("create server on %s: %v", host, err)
		}
		all = append(all, s.ID)
		if host == b.victim {
			onVictim = append(onVictim, s.ID)
		}
	}
	waitServers(b.ctx, t, b.nova, all, "", 6*time.Minute)
	return onVictim
}

// watch polls Nova until every server of ids is ACTIVE off the victim (or
// limit passes): when the first one left the victim's record (a task or
// another host) and when the last one was ACTIVE elsewhere, from crashed.
func (b *bench) watch(ids []string, crashed time.Time, limit time.Duration) (first, all time.Duration, spread map[string]int, err error) {
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	deadline := crashed.Add(limit)
	for {
		spread = map[string]int{}
		done := 0
		for _, s := range listServers(b.ctx, b.t, b.nova) {
			if !want[s.ID] {
				continue
			}
			if first == 0 && (s.TaskState != "" || s.Host != b.victim) {
				first = time.Since(crashed)
			}
			if s.Status == "ACTIVE" && s.TaskState == "" && s.Host != b.victim {
				done++
				spread[s.Host]++
			}
		}
		if done == len(ids) {
			return first, time.Since(crashed), spread, nil
		}
		if time.Now().After(deadline) {
			return first, 0, spread, fmt.Errorf("%d of %d servers ACTIVE elsewhere %s after the power-off", done, len(ids), limit)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// evacuatedOnce reports whether Nova's migrations since since show exactly
// one evacuation of each server of ids.
func (b *bench) evacuatedOnce(ids []string, since time.Time) bool {
	var out struct {
		Migrations []struct {
			InstanceUUID  string `json:"instance_uuid"`
			MigrationType string `json:"migration_type"`
			CreatedAt     string `json:"created_at"`
		} `json:"migrations"`
	}
	if _, err := b.nova.Get(b.ctx, b.nova.ServiceURL("os-migrations"), &out, nil); err != nil {
		b.t.Errorf("list migrations: %v", err)
		return false
	}
	n := map[string]int{}
	for _, m := range out.Migrations {
		at, err := time.Parse("2006-01-02T15:04:05.000000", m.CreatedAt)
		if err != nil || m.MigrationType != "evacuation" || at.Before(since.UTC().Add(-time.Second)) {
			continue
		}
		n[m.InstanceUUID]++
	}
	for _, id := range ids {
		if n[id] != 1 {
			b.t.Logf("server %s evacuated %d times", id, n[id])
			return false
		}
	}
	return true
}

func (b *bench) crash() time.Time {
	at := time.Now()
	if out, errs, code := b.cli("", "crash", b.victim); code != 0 {
		b.t.Fatalf("crash %s: %d %s %s", b.victim, code, out, errs)
	}
	return at
}

// restart boots the victim again and waits until its nova-compute is up
// (and, with given, until given says it is back in service).
func (b *bench) restart(given func(services.Service) bool) {
	if out, errs, code := b.cli("", "start", b.victim); code != 0 {
		b.t.Fatalf("start %s: %d %s %s", b.victim, code, out, errs)
	}
	if err := waitFor(b.ctx, 4*time.Minute, b.victim+" back in Nova", func() (bool, error) {
		s := computeServiceOf(b.ctx, b.t, b.nova, b.victim)
		return s.State == "up" && given(s), nil
	}); err != nil {
		b.t.Fatal(err)
	}
}

func (b *bench) haconfRound(r int) BenchRound {
	t := b.t
	res := BenchRound{Tool: "haconf", Round: r}
	ids := b.boot()
	res.Servers = len(ids)
	store := &compute.FileStore{Dir: b.c.HAStateDir()}
	before := incidentOf(t, store, b.victim)
	time.Sleep(3 * time.Second) // the agents' health is fresh after the boots
	crashed := b.crash()
	first, all, spread, err := b.watch(ids, crashed, 4*time.Minute)
	res.Spread = spread
	res.FirstEvacuate, res.AllActive = first.Seconds(), all.Seconds()
	if err != nil {
		res.Error = err.Error()
	}
	var in *compute.Incident
	if err := waitFor(b.ctx, 2*time.Minute, "the victim's incident to end", func() (bool, error) {
		in = incidentOf(t, store, b.victim)
		return in != nil && (before == nil || in.ID != before.ID) && in.State.Closed(), nil
	}); err != nil {
		res.Error += err.Error()
		return res
	}
	t.Logf("incident %s:\n%s", in.ID, steps(in))
	since := func(at time.Time) float64 { return at.Sub(crashed).Seconds() }
	res.Detected = since(in.FailedAt)
	for _, s := range in.Steps {
		switch s.Name {
		case "fence":
			if s.Error == "" {
				res.Fenced = since(s.At)
			}
		case "isolate":
			if s.Error == "" {
				res.Isolated = since(s.At)
			}
		}
	}
	var firstCall time.Time
	for _, inst := range in.Instances {
		if !inst.Started.IsZero() && (firstCall.IsZero() || inst.Started.Before(firstCall)) {
			firstCall = inst.Started
		}
	}
	if !firstCall.IsZero() {
		res.FirstEvacuate = since(firstCall)
	}
	res.EvacuatedOnce = b.evacuatedOnce(ids, crashed)
	// haconf gives the host back once it is up again.
	b.restart(func(s services.Service) bool { return !s.ForcedDown && s.Status == "enabled" })
	deleteAll(b.ctx, t, b.nova)
	return res
}

// masakari calls Masakari's API (v1, the project-scoped endpoint).
func (b *bench) masakari(method, path string, body, out any) error {
	p := b.nova.ProviderClient
	eo := gophercloud.EndpointOpts{Region: Region}
	eo.ApplyDefaults("instance-ha")
	base, err := p.EndpointLocator(eo)
	if err != nil {
		return err
	}
	_, err = p.Request(b.ctx, method, base+path, &gophercloud.RequestOpts{JSONBody: body, JSONResponse: out,
		OkCodes: []int{http.StatusOK, http.StatusCreated, http.StatusAccepted}})
	return err
}

// masakariSetup gives Masakari a segment (recovery auto) with the victim.
func (b *bench) masakariSetup() {
	t := b.t
	var segs struct {
		Segments []struct{ UUID, Name string } `json:"segments"`
	}
	if err := b.masakari(http.MethodGet, "segments", nil, &segs); err != nil {
		t.Fatalf("masakari segments: %v", err)
	}
	for _, s := range segs.Segments {
		if s.Name == "haconf-bench" {
			b.segment = s.UUID
		}
	}
	if b.segment == "" {
		var seg struct {
			Segment struct{ UUID string } `json:"segment"`
		}
		if err := b.masakari(http.MethodPost, "segments", map[string]any{"segment": map[string]any{
			"name": "haconf-bench", "recovery_method": "auto", "service_type": "COMPUTE"}}, &seg); err != nil {
			t.Fatalf("create masakari segment: %v", err)
		}
		b.segment = seg.Segment.UUID
	}
	var hosts struct {
		Hosts []struct{ UUID, Name string } `json:"hosts"`
	}
	if err := b.masakari(http.MethodGet, "segments/"+b.segment+"/hosts", nil, &hosts); err != nil {
		t.Fatalf("masakari hosts: %v", err)
	}
	for _, h := range hosts.Hosts {
		if h.Name == b.victim {
			b.masakariHost = h.UUID
		}
	}
	if b.masakariHost == "" {
		var h struct {
			Host struct{ UUID string } `json:"host"`
		}
		if err := b.masakari(http.MethodPost, "segments/"+b.segment+"/hosts", map[string]any{"host": map[string]any{
			"name": b.victim, "type": "COMPUTE", "control_attributes": "SSH"}}, &h); err != nil {
			t.Fatalf("add %s to the masakari segment: %v", b.victim, err)
		}
		b.masakariHost = h.Host.UUID
	}
}

func (b *bench) haconf(args ...string) {
	cmd := exec.CommandContext(b.ctx, b.c.HaconfBinary, append(args, "-c", b.c.HAConfigPath())...)
	if out, err := cmd.CombinedOutput(); err != nil {
		b.t.Fatalf("haconf %v: %v\n%s", args, err, out)
	}
}

func (b *bench) masakariRound(tool string, r int) BenchRound {
	t := b.t
	res := BenchRound{Tool: tool, Round: r}
	// Masakari ignores a second notification of a host within 180 s.
	if wait := 190*time.Second - time.Since(b.lastNotification); wait > 0 {
		time.Sleep(wait)
	}
	// haconf keeps its hands off the victim.
	b.haconf("compute", "maintenance", b.victim, "on", "--ttl", "1h", "--reason", "masakari's round of the benchmark")
	defer b.haconf("compute", "maintenance", b.victim, "off")
	if err := b.masakari(http.MethodPut, "segments/"+b.segment+"/hosts/"+b.masakariHost, map[string]any{"host": map[string]any{"on_maintenance": false}}, nil); err != nil {
		t.Fatalf("masakari: %s out of maintenance: %v", b.victim, err)
	}
	ids := b.boot()
	res.Servers = len(ids)
	crashed := b.crash()
	var n struct {
		Notification struct {
			ID string `json:"notification_uuid"`
		} `json:"notification"`
	}
	err := b.masakari(http.MethodPost, "notifications", map[string]any{"notification": map[string]any{
		"type": "COMPUTE_HOST", "hostname": b.victim, "generated_time": time.Now().UTC().Format("2006-01-02T15:04:05.000000"),
		"payload": map[string]any{"event": "STOPPED", "host_status": "NORMAL", "cluster_status": "OFFLINE"}}}, &n)
	b.lastNotification = time.Now()
	if err != nil {
		t.Fatalf("masakari notification: %v", err)
	}
	t.Logf("%s: notification %s sent %s after the power-off", tool, n.Notification.ID, time.Since(crashed).Round(time.Millisecond))
	first, all, spread, err := b.watch(ids, crashed, 25*time.Minute)
	res.Spread = spread
	res.FirstEvacuate, res.AllActive = first.Seconds(), all.Seconds()
	if err != nil {
		res.Error = err.Error()
	}
	res.EvacuatedOnce = b.evacuatedOnce(ids, crashed)
	var st struct {
		Notification struct{ Status string } `json:"notification"`
	}
	if err := b.masakari(http.MethodGet, "notifications/"+n.Notification.ID, nil, &st); err == nil {
		t.Logf("%s: notification %s", tool, st.Notification.Status)
	}
	// Masakari disabled the service (and never forced it down): enable it
	// once it is back, as an operator would.
	b.restart(func(s services.Service) bool {
		if s.Status != "enabled" {
			services.Update(b.ctx, b.nova, s.ID, services.UpdateOpts{Status: services.ServiceEnabled})
			return false
		}
		return !s.ForcedDown
	})
	deleteAll(b.ctx, t, b.nova)
	return res
}
