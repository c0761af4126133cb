package nova

import (
	"context"
	"errors"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestNovaLab runs the client against a live cloud: the compute lab
// (haconf-lab compute up; source <(haconf-lab compute env)) or any cloud
// whose admin credentials are in OS_*. Every read call, with one login.
// With HACONF_NOVA_LAB_EVACUATE=HOST (a host that is powered off), it also
// forces HOST down, disables it, evacuates the servers still there (the
// first one outside server groups to a host of its choice, the others to
// hosts the scheduler picks), checks that a second Evacuate of a server
// under way is refused, waits until they are settled, and checks that
// Nova refuses to force HOST up again. Not part of CI:
// testdata/capture.sh runs it.
func TestNovaLab(t *testing.T) {
	if os.Getenv("HACONF_NOVA_LAB") != "1" {
		t.Skip("needs a live cloud: HACONF_NOVA_LAB=1 and OS_* (source <(haconf-lab compute env))")
	}
	a := Auth{
		AuthURL: os.Getenv("OS_AUTH_URL"), Username: os.Getenv("OS_USERNAME"), Password: os.Getenv("OS_PASSWORD"),
		ProjectName: os.Getenv("OS_PROJECT_NAME"), UserDomainName: os.Getenv("OS_USER_DOMAIN_NAME"),
		ProjectDomainName: os.Getenv("OS_PROJECT_DOMAIN_NAME"), Region: os.Getenv("OS_REGION_NAME"),
	}
	if a.AuthURL == "" {
		t.Skip("OS_AUTH_URL not set: source <(haconf-lab compute env)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	logins := &loginCounter{next: DefaultHTTPClient().Transport}
	hc := DefaultHTTPClient()
	hc.Transport = logins
	start := time.Now()
	c, err := New(ctx, a, hc)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Logf("logged in as %s in %s; compute %s, placement %s", a, time.Since(start).Round(time.Millisecond), c.ComputeEndpoint(), c.PlacementEndpoint())

	svcs, err := c.ComputeServices(ctx)
	if err != nil || len(svcs) == 0 {
		t.Fatalf("ComputeServices: %d, %v", len(svcs), err)
	}
	var first string
	for _, s := range svcs {
		t.Logf("service %s: %s %s %s forced_down=%t zone %s reason %q updated %s", s.ID, s.Host, s.State, s.Status, s.ForcedDown, s.Zone, s.DisabledReason, s.UpdatedAt.Format(time.RFC3339))
		if s.ID == "" || s.Host == "" || (s.State != "up" && s.State != "down") || s.UpdatedAt.IsZero() {
			t.Errorf("service %+v", s)
		}
		servers, err := c.ServersOnHost(ctx, s.Host)
		if err != nil {
			t.Fatalf("ServersOnHost(%s): %v", s.Host, err)
		}
		for _, srv := range servers {
			t.Logf("  server %s %s %s task %q flavor %s (%d vCPU, %d MiB, specs %v) az %s tags %v", srv.ID, srv.Name, srv.Status, srv.TaskState,
				srv.Flavor.Name, srv.Flavor.VCPUs, srv.Flavor.RAM, srv.Flavor.ExtraSpecs, srv.AvailabilityZone, srv.Tags)
			if srv.Host != s.Host || srv.Flavor.VCPUs == 0 || srv.ProjectID == "" || srv.Updated.IsZero() {
				t.Errorf("server on %s: %+v", s.Host, srv)
			}
			if first == "" {
				first = srv.ID
			}
		}
	}
	if first != "" {
		srv, err := c.Server(ctx, first)
		if err != nil || srv.ID != first {
			t.Errorf("Server(%s): %+v, %v", first, srv, err)
		}
	}
	if _, err := c.Server(ctx, "00000000-0000-0000-0000-000000000000"); !IsNotFound(err) {
		t.Errorf("Server of no server: %v, want a 404", err)
	}
	groups, err := c.ServerGroups(ctx)
	if err != nil {
		t.Fatalf("ServerGroups: %v", err)
	}
	for _, g := range groups {
		t.Logf("server group %s %s %v members %v", g.ID, g.Name, g.Policies, g.Members)
	}
	aggs, err := c.Aggregates(ctx)
	if err != nil {
		t.Fatalf("Aggregates: %v", err)
	}
	for _, ag := range aggs {
		t.Logf("aggregate %s az %q hosts %v metadata %v", ag.Name, ag.AvailabilityZone, ag.Hosts, ag.Metadata)
	}
	providers, err := c.Providers(ctx)
	if err != nil {
		t.Fatalf("Providers: %v", err)
	}
	if len(providers) < len(svcs) {
		t.Errorf("%d resource providers for %d compute services", len(providers), len(svcs))
	}
	for _, p := range providers {
		t.Logf("provider %s %s: VCPU %d/%d, MEMORY_MB %d/%d, DISK_GB %d/%d", p.UUID, p.Name,
			p.Usages["VCPU"], p.Capacity["VCPU"], p.Usages["MEMORY_MB"], p.Capacity["MEMORY_MB"],
			p.Usages["DISK_GB"], p.Capacity["DISK_GB"])
	}

	if host := os.Getenv("HACONF_NOVA_LAB_EVACUATE"); host != "" {
		evacuateHost(ctx, t, c, svcs, groups, host)
	}
	if n := logins.n.Load(); n != 1 {
		t.Errorf("%d logins, want 1", n)
	}
}

// evacuateHost does what the failover controller does once host is off.
func evacuateHost(ctx context.Context, t *testing.T, c *Client, svcs []Service, groups []ServerGroup, host string) {
	var svc Service
	chosen := "" // a target of our own: the first other host up and enabled
	for _, s := range svcs {
		if s.Host == host {
			svc = s
		} else if chosen == "" && s.Up() && s.Enabled() {
			chosen = s.Host
		}
	}
	if svc.ID == "" {
		t.Fatalf("no nova-compute service on %s", host)
	}
	grouped := map[string]bool{} // an affinity policy could refuse our target
	for _, g := range groups {
		for _, m := range g.Members {
			grouped[m] = true
		}
	}
	start := time.Now()
	if err := c.ForceDown(ctx, svc.ID, true); err != nil {
		t.Fatalf("ForceDown: %v", err)
	}
	if err := c.Disable(ctx, svc.ID, "haconf: "+host+" fenced (TestNovaLab)"); err != nil {
		t.Fatalf("Disable: %v", err)
	}
	t.Logf("%s forced down and disabled in %s", host, time.Since(start).Round(time.Millisecond))
	servers, err := c.ServersOnHost(ctx, host)
	if err != nil {
		t.Fatal(err)
	}
	wantHost := map[string]string{}
	var mine []Server // the ones this test evacuates, and waits for
	for _, s := range servers {
		if s.TaskState != "" {
			t.Logf("%s (%s) already %s: left alone", s.Name, s.ID, s.TaskState)
			continue
		}
		to := ""
		if len(wantHost) == 0 && !grouped[s.ID] {
			to = chosen
		}
		if err := c.Evacuate(ctx, s.ID, to); err != nil {
			t.Errorf("Evacuate %s to %q: %v", s.Name, to, err)
			continue
		}
		mine = append(mine, s)
		if to != "" {
			wantHost[s.ID] = to
			err := c.Evacuate(ctx, s.ID, "")
			if !errors.Is(err, ErrServerBusy) {
				t.Errorf("second Evacuate of %s: %v, want ErrServerBusy", s.Name, err)
			} else {
				t.Logf("second Evacuate refused as it should: %v", err)
			}
		}
	}
	if len(wantHost) == 0 {
		t.Errorf("no server evacuated to a chosen host")
	}
	for _, s := range mine {
		for {
			now, err := c.Server(ctx, s.ID)
			if err != nil {
				t.Fatal(err)
			}
			done, failed := now.Settled(host)
			if failed {
				t.Errorf("%s (%s): evacuation failed: %s on %s, fault %q", s.Name, s.ID, now.Status, now.Host, now.Fault)
				break
			}
			if done {
				t.Logf("%s (%s) %s on %s, %s after the force-down (stopped before: %t, now: %t)", s.Name, s.ID, now.Status, now.Host,
					time.Since(start).Round(100*time.Millisecond), s.Stopped(), now.Stopped())
				if s.Stopped() != now.Stopped() {
					t.Errorf("%s: stopped %t before, %t after the evacuation", s.Name, s.Stopped(), now.Stopped())
				}
				if h, ok := wantHost[s.ID]; ok && now.Host != h {
					t.Errorf("%s: on %s, sent to %s", s.Name, now.Host, h)
				}
				break
			}
			select {
			case <-ctx.Done():
				t.Fatalf("%s: not settled: %s task %q on %s", s.Name, now.Status, now.TaskState, now.Host)
			case <-time.After(2 * time.Second):
			}
		}
	}
	err = c.ForceDown(ctx, svc.ID, false)
	if !IsForceUpRefused(err) {
		t.Errorf("ForceDown(false) while %s is off: %v, want Nova's refusal", host, err)
	} else {
		t.Logf("force up refused as expected: %v", err)
	}
}

// loginCounter counts Keystone password logins.
type loginCounter struct {
	next http.RoundTripper
	n    atomic.Int32
}

func (l *loginCounter) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/auth/tokens") {
		l.n.Add(1)
	}
	return l.next.RoundTrip(r)
}
