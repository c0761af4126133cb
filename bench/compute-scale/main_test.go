package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// The runs below are the benchmark at a tiny size, so that it keeps
// working; their only timing bounds are the runs' own generous limits.

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// smoke skips the tiny runs unless HACONF_SCALE_SMOKE=1 (bench/compute-scale/run
// sets it): in `go test ./...` they ran beside compute/gossip's own timing
// tests on a 2-core machine and made one of them miss its 10 s window.
func smoke(t *testing.T) {
	t.Helper()
	if os.Getenv("HACONF_SCALE_SMOKE") != "1" {
		t.Skip("the benchmark at a tiny size: HACONF_SCALE_SMOKE=1 runs it (bench/compute-scale/run does)")
	}
}

func TestGossipTiny(t *testing.T) {
	smoke(t)
	if testing.Short() {
		t.Skip("runs 14 real gossip members for about 15 s: not in -short")
	}
	if runtime.GOOS != "linux" {
		t.Skip("needs 127.1.x.y and 127.2.x.y, which only Linux answers on without setup")
	}
	t.Parallel()
	g, err := runGossip(t.Context(), gossipParams{
		Agents: 12, DomainSize: 6, Profile: "local", Loss: 0.01, Steady: 2 * time.Second,
		Kill: 2, Cut: 2, Watch: 45 * time.Second, Hold: time.Second, HealthEvery: time.Second,
		Port: 28600, Converge: 20 * time.Second, Log: quiet(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if g.Domains != 2 || g.Members != 14 {
		t.Errorf("%d domains, %d members; want 2 and 14", g.Domains, g.Members)
	}
	if !g.ConvergedOK {
		// The local profile's push/pull (15 s) completes a pool whose
		// alive broadcasts were lost; the controllers saw every agent.
		t.Logf("%d of %d domains converged in %s", g.DomainsConverged, g.Domains, g.P.Converge)
	}
	if len(g.Detect) != 2 || g.Undetected != 0 {
		t.Errorf("detected %v, %d not: want both crashed agents", g.Detect, g.Undetected)
	}
	for _, c := range g.Cuts {
		if c.Detected == 0 || c.OtherDied || c.Condition != "link-down" {
			t.Errorf("cut %+v: want detected on its link only, link-down", c)
		}
	}
	if len(g.Cuts) != 2 || g.Cuts[0].Link == g.Cuts[1].Link {
		t.Errorf("cuts %+v: want one per link", g.Cuts)
	}
	if g.Sent == 0 || g.CPU == 0 || g.RSS == 0 {
		t.Errorf("nothing measured: %d packets, CPU %s, RSS %d", g.Sent, g.CPU, g.RSS)
	}
	t.Logf("detection %v; false positives %v; %d packets, %d dropped", g.Detect, g.FalseEvents, g.Sent, g.Dropped)
	md := (&report{Heading: true, Machine: describeMachine(), Gossip: g}).markdown()
	for _, want := range []string{"### Gossip: 12 agents", "**false positives**", "**detection** of 2 crashed agents", "judged link-down"} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
}

func TestDeciderTiny(t *testing.T) {
	smoke(t)
	if testing.Short() {
		t.Skip("runs the controller with its 1 s ticks for about 10 s: not in -short")
	}
	t.Parallel()
	d, err := runDecider(t.Context(), deciderParams{
		Cloud: cloudParams{Hosts: 50, Servers: 500, RackSize: 10, AntiAffinity: 0.05, MaxLimit: 1000, Seed: 1,
			APILatency: span{time.Millisecond, 3 * time.Millisecond}, Schedule: span{10 * time.Millisecond, 30 * time.Millisecond},
			Rebuild: span{50 * time.Millisecond, 200 * time.Millisecond}},
		Fail: 4, FailRack: 1, Concurrency: 8, Fence: span{5 * time.Millisecond, 10 * time.Millisecond},
		Timeout: 2 * time.Minute, Log: quiet(),
	})
	if err != nil {
		t.Fatal(err)
	}
	a := d.Audit
	if d.TimedOut || len(d.Incidents) != 4 || d.States["done"] != 4 {
		t.Errorf("incidents %v (timed out: %t): want 4 done", d.States, d.TimedOut)
	}
	if a.Servers == 0 || a.Moved != a.Servers || a.Busy != 0 || len(a.OverCapacity) != 0 || a.AntiAffinity != 0 {
		t.Errorf("audit %+v: want every server moved, none twice at once, no host over capacity, anti-affinity kept", a)
	}
	for _, in := range d.Incidents {
		if in.Fenced == 0 || in.Isolated < in.Fenced || in.FirstCall < in.Listed || in.AllActive < in.FirstCall {
			t.Errorf("incident steps out of order: %+v", in)
		}
	}
	md := (&report{Heading: true, Machine: describeMachine(), Decider: d}).markdown()
	for _, want := range []string{"### Decider: 50 hosts, 500 servers, a rack of 4 hosts fails", "**every server's first evacuate call sent**", "| Evacuate |", "max_failed_hosts 4"} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
}

// TestCloudShapes asks the simulated cloud what compute/nova's Client asks
// and wants every answer to have the keys of the real one recorded in
// compute/nova/testdata (values aside).
func TestCloudShapes(t *testing.T) {
	// The evacuation stays under way: the scheduler answers after the test.
	c, err := newCloud(cloudParams{Hosts: 4, Servers: 12, RackSize: 2, AntiAffinity: 0.2, Seed: 1, Schedule: span{time.Hour, time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	token := ""
	call := func(method, path, body string, auth bool) (int, []byte) {
		t.Helper()
		req, err := http.NewRequest(method, c.url+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if auth {
			req.Header.Set("X-Auth-Token", token)
		}
		if strings.HasPrefix(path, "/placement/allocation_candidates") {
			req.Header.Set("OpenStack-API-Version", "placement 1.29")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if method == http.MethodPost && strings.HasSuffix(path, "/auth/tokens") && resp.StatusCode == 201 {
			token = resp.Header.Get("X-Subject-Token")
		}
		return resp.StatusCode, b
	}
	login := func(pw string) string {
		return `{"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "admin", "domain": {"name": "Default"}, "password": "` + pw + `"}}}, "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}}`
	}
	srv := c.servers[0]
	other := hostName(3)
	if srv.Host == other {
		other = hostName(2)
	}
	svc := c.svcByHost[srv.Host].ID
	onHost := 0
	for _, s := range c.servers {
		if s.Host == srv.Host {
			onHost++
		}
	}
	if onHost < 2 {
		t.Fatalf("%s holds %d servers: the paging case needs 2", srv.Host, onHost)
	}
	for _, k := range []struct {
		recording, method, path, body string
		auth                          bool
	}{
		{"keystone-wrong-password", "POST", "/identity/v3/auth/tokens", login("wrong"), false},
		{"keystone-token", "POST", "/identity/v3/auth/tokens", login(cloudPassword), false},
		{"unauthorized", "GET", "/compute/v2.1/os-services?binary=nova-compute", "", false},
		{"nova-version", "GET", "/compute/v2.1/", "", false},
		{"placement-versions", "GET", "/placement/", "", false},
		{"services", "GET", "/compute/v2.1/os-services?binary=nova-compute", "", true},
		{"aggregates", "GET", "/compute/v2.1/os-aggregates", "", true},
		{"server-groups-page", "GET", "/compute/v2.1/os-server-groups?all_projects=True&limit=1000&offset=0", "", true},
		{"server-groups-end", "GET", "/compute/v2.1/os-server-groups?all_projects=True&limit=1000&offset=1000", "", true},
		{"resource-providers", "GET", "/placement/resource_providers", "", true},
		{"inventories-cmp1", "GET", "/placement/resource_providers/" + c.providers[0].UUID + "/inventories", "", true},
		{"usages-cmp1", "GET", "/placement/resource_providers/" + c.providers[0].UUID + "/usages", "", true},
		{"allocation-candidates", "GET", "/placement/allocation_candidates?resources=VCPU:1", "", true},
		{"placement-not-found", "GET", "/placement/resource_providers/00000000-0000-0000-0000-000000000000/inventories", "", true},
		{"servers-on-host-page1", "GET", "/compute/v2.1/servers/detail?all_tenants=1&host=" + srv.Host + "&limit=1", "", true},
		{"server", "GET", "/compute/v2.1/servers/" + srv.ID, "", true},
		{"server-not-found", "GET", "/compute/v2.1/servers/00000000-0000-0000-0000-000000000000", "", true},
		{"evacuate-in-use", "POST", "/compute/v2.1/servers/" + srv.ID + "/action", `{"evacuate": {}}`, true},
		{"force-down", "PUT", "/compute/v2.1/os-services/" + svc, `{"forced_down": true}`, true},
		{"disable", "PUT", "/compute/v2.1/os-services/" + svc, `{"status": "disabled", "disabled_reason": "haconf: fenced"}`, true},
		{"evacuate-unknown-host", "POST", "/compute/v2.1/servers/" + srv.ID + "/action", `{"evacuate": {"host": "cmp9"}}`, true},
		{"evacuate-same-host", "POST", "/compute/v2.1/servers/" + srv.ID + "/action", `{"evacuate": {"host": "` + srv.Host + `"}}`, true},
		{"evacuate-host", "POST", "/compute/v2.1/servers/" + srv.ID + "/action", `{"evacuate": {"host": "` + other + `"}}`, true},
		{"server-rebuilding", "GET", "/compute/v2.1/servers/" + srv.ID, "", true},
		{"services-forced-down", "GET", "/compute/v2.1/os-services?binary=nova-compute", "", true},
	} {
		t.Run(k.recording, func(t *testing.T) {
			status, got := call(k.method, k.path, k.body, k.auth)
			want := recorded(t, k.recording)
			if ws := recordedStatus(t, k.recording); status != ws {
				t.Errorf("status %d, recorded %d: %s", status, ws, got)
			}
			if len(want) == 0 {
				if len(got) != 0 {
					t.Errorf("a body where the recording has none: %s", got)
				}
				return
			}
			gk, wk := keys(t, got), keys(t, want)
			if missing, extra := diff(wk, gk), diff(gk, wk); len(missing)+len(extra) > 0 {
				t.Errorf("keys missing: %v\nkeys the recording lacks: %v\nanswer: %s", missing, extra, got)
			}
		})
	}
	if s := c.srvByID[srv.ID]; s.Task != "rebuilding" || len(s.Evacs) != 1 {
		t.Errorf("after the evacuate call: task %q, %d evacuations", s.Task, len(s.Evacs))
	}
}

func recorded(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "compute", "nova", "testdata", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSpace(b)
}

func recordedStatus(t *testing.T, name string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "compute", "nova", "testdata", name+".http"))
	if err != nil {
		t.Fatal(err)
	}
	var proto string
	var status int
	if _, err := fmt.Sscan(string(b), &proto, &status); err != nil {
		t.Fatalf("%s.http: %v", name, err)
	}
	return status
}

// free are the objects whose keys are data (metadata, extra specs,
// addresses, the keys of the catalog's other services' entries): their
// own keys are not compared.
var free = []string{"metadata", "extra_specs", "addresses"}

// keys lists every key path of a JSON document ("token.catalog[].type"),
// the elements of each array merged.
var uuidKey = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

func keys(t *testing.T, b []byte) map[string]bool {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	out := map[string]bool{}
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				name := k
				if uuidKey.MatchString(k) {
					name = "{uuid}" // provider_summaries and allocations are keyed by provider
				}
				p := name
				if prefix != "" {
					p = prefix + "." + name
				}
				out[p] = true
				if !slices.Contains(free, k) {
					walk(p, x)
				}
			}
		case []any:
			for _, x := range v {
				walk(prefix+"[]", x)
			}
		}
	}
	walk("", v)
	return out
}

func diff(a, b map[string]bool) []string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(a)) {
		if !b[k] {
			out = append(out, k)
		}
	}
	return out
}

func TestFlags(t *testing.T) {
	var stderr bytes.Buffer
	o, err := parseFlags([]string{"-agents", "500", "-api-latency", "10ms-30ms", "-rebuild", "2s"}, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	if o.gossip.Agents != 500 || o.decider.Cloud.APILatency != (span{10 * time.Millisecond, 30 * time.Millisecond}) || o.decider.Cloud.Rebuild != (span{2 * time.Second, 2 * time.Second}) {
		t.Errorf("parsed %+v", o)
	}
	for _, bad := range [][]string{{"-part", "both"}, {"-loss", "1"}, {"-fail", "41"}, {"-rebuild", "6s-1s"}, {"-kill", "300"}} {
		if _, err := parseFlags(bad, &stderr); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

// The gossip members' addresses are distinct loopback ones.
func TestAddresses(t *testing.T) {
	seen := map[string]bool{}
	for i := range 1000 {
		for _, l := range []byte{1, 2} {
			a := agentAddr(l, i)
			if !a.IsLoopback() || seen[a.String()] || a == controllerAddr(l) {
				t.Fatalf("agent %d link %d: %s", i, l, a)
			}
			seen[a.String()] = true
		}
	}
}
