package nova

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
)

var ctx = context.Background()

// What the recordings in testdata are about (capture.sh): cmp3 had the
// most servers and was crashed; ha-vm5 went to cmp1, the host chosen for
// it; ha-vm4 was stopped before and went where the scheduler chose.
const (
	victim = "cmp3"
	target = "cmp1"
)

func TestOneLoginForManyCalls(t *testing.T) {
	f := newFakeCloud(t, "services", "aggregates", "server", "resource-providers", "allocation-candidates")
	c := f.client()
	for range 3 {
		if _, err := c.ComputeServices(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Aggregates(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Server(ctx, recordedID(t, "server")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Providers(ctx); err != nil {
		t.Fatal(err)
	}
	if n := f.loginCount(); n != 1 {
		t.Errorf("%d logins, want 1", n)
	}
	for _, r := range f.requests() {
		if tok := r.Header.Get("X-Auth-Token"); tok != "token-1" {
			t.Errorf("%s %s: token %q, want token-1", r.Method, r.Path, tok)
		}
	}
}

func TestMicroversionHeaders(t *testing.T) {
	f := newFakeCloud(t, "services", "resource-providers", "allocation-candidates")
	c := f.client()
	if _, err := c.ComputeServices(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Providers(ctx); err != nil {
		t.Fatal(err)
	}
	var compute, placement int
	for _, r := range f.requests() {
		switch {
		case strings.HasPrefix(r.Path, "/compute/"):
			compute++
			if got := r.Header.Get("OpenStack-API-Version"); got != "compute 2.53" {
				t.Errorf("%s %s: OpenStack-API-Version %q", r.Method, r.Path, got)
			}
			if got := r.Header.Get("X-OpenStack-Nova-API-Version"); got != "2.53" {
				t.Errorf("%s %s: X-OpenStack-Nova-API-Version %q", r.Method, r.Path, got)
			}
		case strings.HasPrefix(r.Path, "/placement/"):
			placement++
			want := "placement 1.14"
			if r.Path == "/placement/allocation_candidates" {
				want = "placement " + SummariesMicroversion
			}
			if got := r.Header.Get("OpenStack-API-Version"); got != want {
				t.Errorf("%s %s: OpenStack-API-Version %q, want %q", r.Method, r.Path, got, want)
			}
		default:
			t.Errorf("request to %s", r.Path)
		}
	}
	if compute != 1 || placement != 2 {
		t.Errorf("%d compute and %d placement requests, want 1 and 2", compute, placement)
	}
	if !strings.HasSuffix(c.ComputeEndpoint(), "/compute/v2.1/") || !strings.HasSuffix(c.PlacementEndpoint(), "/placement/") {
		t.Errorf("endpoints %s %s", c.ComputeEndpoint(), c.PlacementEndpoint())
	}
}

func TestLoginAgainAfter401(t *testing.T) {
	f := newFakeCloud(t, "services")
	c := f.client()
	if _, err := c.ComputeServices(ctx); err != nil {
		t.Fatal(err)
	}
	f.revoke() // Keystone's keys rotated, or the token was revoked
	svcs, err := c.ComputeServices(ctx)
	if err != nil {
		t.Fatalf("after the 401: %v", err)
	}
	if len(svcs) != 3 {
		t.Errorf("%d services after the 401", len(svcs))
	}
	if n := f.loginCount(); n != 2 {
		t.Errorf("%d logins, want 2", n)
	}
	var tokens []string
	for _, r := range f.requests() {
		tokens = append(tokens, r.Header.Get("X-Auth-Token"))
	}
	if want := []string{"token-1", "token-1", "token-2"}; !slices.Equal(tokens, want) {
		t.Errorf("tokens sent %v, want %v (the refused call retried once with the new token)", tokens, want)
	}
	if _, err := c.ComputeServices(ctx); err != nil || f.loginCount() != 2 {
		t.Errorf("next call: %v, %d logins", err, f.loginCount())
	}
}

func TestLoginAgainRefused(t *testing.T) {
	f := newFakeCloud(t, "services")
	c := f.client()
	f.revoke()
	f.refuseLogins() // say, the password was changed
	_, err := c.ComputeServices(ctx)
	var e *Error
	if err == nil || !errors.As(err, &e) || e.Status != http.StatusUnauthorized ||
		!strings.Contains(err.Error(), "list compute services: token refused (call: 401 Unauthorized: The request you have made requires authentication.") ||
		!strings.Contains(err.Error(), "a new login failed: keystone login: 401 Unauthorized") {
		t.Errorf("%v", err)
	}
}

func TestRenewBeforeExpiry(t *testing.T) {
	f := newFakeCloud(t, "services")
	f.ttl = []time.Duration{30 * time.Second, time.Hour} // the first token is about to expire
	c := f.client()
	for range 2 {
		if _, err := c.ComputeServices(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n := f.loginCount(); n != 2 {
		t.Errorf("%d logins, want 2", n)
	}
	for _, r := range f.requests() {
		if tok := r.Header.Get("X-Auth-Token"); tok != "token-2" {
			t.Errorf("%s %s with %s, want the renewed token-2", r.Method, r.Path, tok)
		}
	}
}

func TestLoginRefused(t *testing.T) {
	f := newFakeCloud(t)
	a := f.auth()
	a.Password = "wrong"
	_, err := New(ctx, a, f.srv.Client())
	var e *Error
	if !errors.As(err, &e) || e.Status != http.StatusUnauthorized {
		t.Fatalf("New with a wrong password: %v, want a 401 *Error", err)
	}
	if e.Message != "The request you have made requires authentication." || !strings.HasPrefix(e.RequestID, "req-") {
		t.Errorf("message %q, request id %q", e.Message, e.RequestID)
	}
	if strings.Contains(err.Error(), `"wrong"`) || strings.Contains(err.Error(), "password: wrong") {
		t.Errorf("error shows the password: %v", err)
	}
}

func TestNewChecks(t *testing.T) {
	f := newFakeCloud(t)
	err := Auth{Interface: "private"}.Validate()
	for _, want := range []string{"auth_url: missing", "username: missing", "password: missing", "project_name: missing", `interface: "private"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate: %v; want %q", err, want)
		}
	}
	a := f.auth()
	a.Region = "RegionTwo"
	if _, err := New(ctx, a, f.srv.Client()); err == nil || !strings.Contains(err.Error(), "RegionTwo") {
		t.Errorf("New in a region the catalog lacks: %v", err)
	}
	for _, iface := range []string{"internal", "admin"} {
		a = f.auth()
		a.Interface = iface
		if _, err := New(ctx, a, f.srv.Client()); err != nil {
			t.Errorf("New with the %s interface: %v", iface, err)
		}
	}
}

func TestMicroversionTooOld(t *testing.T) {
	f := newFakeCloud(t)
	f.edit("nova-version", `"version": "2.93"`, `"version": "2.42"`) // Ocata's Nova
	_, err := New(ctx, f.auth(), f.srv.Client())
	if err == nil || !strings.Contains(err.Error(), "compute API at") || !strings.Contains(err.Error(), "2.1 to 2.42; haconf needs 2.53") {
		t.Errorf("New against Nova 2.42: %v", err)
	}
}

func TestAuthHidesPassword(t *testing.T) {
	a := Auth{AuthURL: "http://k:5000/v3", Username: "admin", Password: "s3cret-pw", ProjectName: "admin"}
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("login", "auth", a)
	for _, s := range []string{fmt.Sprint(a), fmt.Sprintf("%+v", a), fmt.Sprintf("%#v", a), fmt.Sprintf("%v", &a), buf.String()} {
		if strings.Contains(s, "s3cret") {
			t.Errorf("password shown: %s", s)
		}
		if !strings.Contains(s, "admin") {
			t.Errorf("user not shown: %s", s)
		}
	}
}

func TestComputeServices(t *testing.T) {
	for _, tc := range []struct {
		recording string
		want      map[string]Service // by host; ID and UpdatedAt checked apart
	}{
		{"services", map[string]Service{
			"cmp1": {Host: "cmp1", Zone: "nova", Status: "enabled", State: "up"},
			"cmp2": {Host: "cmp2", Zone: "nova", Status: "enabled", State: "up"},
			"cmp3": {Host: "cmp3", Zone: "az-ssd", Status: "enabled", State: "up"},
		}},
		{"services-forced-down", map[string]Service{
			"cmp1": {Host: "cmp1", Zone: "nova", Status: "enabled", State: "up"},
			"cmp2": {Host: "cmp2", Zone: "nova", Status: "enabled", State: "up"},
			"cmp3": {Host: "cmp3", Zone: "az-ssd", Status: "disabled", State: "down", DisabledReason: "haconf: fenced", ForcedDown: true},
		}},
		{"services-recovered", map[string]Service{ // cmp3 booted, forced up and enabled again
			"cmp1": {Host: "cmp1", Zone: "nova", Status: "enabled", State: "up"},
			"cmp2": {Host: "cmp2", Zone: "nova", Status: "enabled", State: "up"},
			"cmp3": {Host: "cmp3", Zone: "az-ssd", Status: "enabled", State: "up"},
		}},
	} {
		t.Run(tc.recording, func(t *testing.T) {
			f := newFakeCloud(t, tc.recording)
			svcs, err := f.client().ComputeServices(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(svcs) != len(tc.want) {
				t.Errorf("%d services, want %d", len(svcs), len(tc.want))
			}
			for _, s := range svcs {
				if len(s.ID) != 36 || s.UpdatedAt.Before(time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)) || s.UpdatedAt.Location() != time.UTC {
					t.Errorf("%s: id %q, updated %s", s.Host, s.ID, s.UpdatedAt)
				}
				s.ID, s.UpdatedAt = "", time.Time{}
				if s != tc.want[s.Host] {
					t.Errorf("got  %+v\nwant %+v", s, tc.want[s.Host])
				}
			}
			if q := f.requests()[0].Query.Encode(); q != "binary=nova-compute" {
				t.Errorf("query %s", q)
			}
		})
	}
}

// Each update sends the body Nova took in the lab: the fake answers only a
// request whose JSON body equals the recorded one; the exact bytes are
// checked too (no other keys, forced_down false sent).
func TestServiceUpdates(t *testing.T) {
	id := recordedID(t, "force-down")
	for _, tc := range []struct {
		recording string
		call      func(*Client) error
		body      string
	}{
		{"force-down", func(c *Client) error { return c.ForceDown(ctx, id, true) }, `{"forced_down":true}`},
		{"unforce", func(c *Client) error { return c.ForceDown(ctx, id, false) }, `{"forced_down":false}`},
		{"disable", func(c *Client) error { return c.Disable(ctx, id, "haconf: fenced") }, `{"disabled_reason":"haconf: fenced","status":"disabled"}`},
		{"enable", func(c *Client) error { return c.Enable(ctx, id) }, `{"status":"enabled"}`},
	} {
		t.Run(tc.recording, func(t *testing.T) {
			f := newFakeCloud(t, tc.recording)
			if err := tc.call(f.client()); err != nil {
				t.Fatal(err)
			}
			r := f.requests()[0]
			if r.Method != http.MethodPut || r.Path != "/compute/v2.1/os-services/"+id || string(r.Body) != tc.body {
				t.Errorf("sent %s %s %s, want PUT .../os-services/%s %s", r.Method, r.Path, r.Body, id, tc.body)
			}
		})
	}
}

func TestDisableReasonCut(t *testing.T) {
	f := newFakeCloud(t, "disable")
	long := "haconf: fenced" + strings.Repeat(" é", 200)
	f.recs[len(f.recs)-1].reqBody = fmt.Appendf(nil, `{"status": "disabled", "disabled_reason": %q}`, string([]rune(long)[:255]))
	if err := f.client().Disable(ctx, recordedID(t, "disable"), long); err != nil {
		t.Fatal(err)
	}
}

func TestForceUpRefused(t *testing.T) {
	f := newFakeCloud(t, "unforce-refused")
	err := f.client().ForceDown(ctx, recordedID(t, "unforce-refused"), false)
	var e *Error
	if !errors.As(err, &e) || e.Status != 400 || !IsForceUpRefused(err) || e.Retryable() {
		t.Fatalf("%v", err)
	}
	if want := "Unable to force up host cmp3 as `done` evacuation migration records remain associated with the host. " +
		"Ensure the compute service has been restarted, allowing these records to move to `completed` before retrying this request."; e.Message != want {
		t.Errorf("message %q", e.Message)
	}
}

func TestServersOnHost(t *testing.T) {
	// The lab was asked for 2 per page (limit=2); the client asks for
	// none, and gets what a Nova with max_limit 2 would send: every page
	// with a next link, the last one empty.
	f := newFakeCloud(t, "servers-on-host-page1", "servers-on-host-page2", "servers-on-host-page3", "servers-on-host-page4")
	f.asked("servers-on-host-page1", url.Values{"all_tenants": {"1"}, "host": {victim}})
	paged, err := f.client().ServersOnHost(ctx, victim)
	if err != nil {
		t.Fatal(err)
	}
	if len(paged) != 6 || len(f.requests()) != 4 {
		t.Fatalf("%d servers in %d requests, want 6 in 4", len(paged), len(f.requests()))
	}

	f = newFakeCloud(t, "servers-on-host")
	all, err := f.client().ServersOnHost(ctx, victim)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for i, s := range all {
		names = append(names, s.Name)
		if s.ID != paged[i].ID {
			t.Errorf("server %d: %s in one page, %s in pages of 2", i, s.ID, paged[i].ID)
		}
		if s.Host != victim || s.HostStatus != "UP" || s.TaskState != "" || s.ProjectID != "c35bb7082ecd4d6d8558d907f7fdab53" ||
			s.AvailabilityZone != "az-ssd" || s.ImageID != "00000000-0000-0000-0000-00000000f001" || s.Updated.IsZero() ||
			s.Metadata["owner"] != "lab" || !slices.Equal(s.Tags, []string{"ha", "tier-1"}) {
			t.Errorf("%+v", s)
		}
		if s.Stopped() != (s.Name == "ha-vm4") || s.Stopped() != (s.VMState == "stopped") {
			t.Errorf("%s: status %s vm_state %s, Stopped %t", s.Name, s.Status, s.VMState, s.Stopped())
		}
	}
	if want := []string{"ha-vm5", "ha-vm4", "ha-vm2", "ha-vm1", "ha-anti-2", "ha-vm3"}; !slices.Equal(names, want) {
		t.Errorf("servers %v, want %v", names, want)
	}
	lab := Flavor{Name: "m1.lab", VCPUs: 1, RAM: 256, Disk: 1, ExtraSpecs: map[string]string{}}
	hatest := Flavor{Name: "m1.hatest", VCPUs: 1, RAM: 256, Disk: 1, Ephemeral: 1, Swap: 32,
		ExtraSpecs: map[string]string{"haconf:evacuate": "true", "haconf:tier": "1"}}
	for _, s := range all {
		want := lab
		if s.Name == "ha-anti-2" {
			want = hatest
		}
		if fmt.Sprint(s.Flavor) != fmt.Sprint(want) {
			t.Errorf("%s: flavor %+v, want %+v", s.Name, s.Flavor, want)
		}
	}
	if q := f.requests()[0].Query.Encode(); q != "all_tenants=1&host="+victim {
		t.Errorf("query %s", q)
	}
}

func TestServer(t *testing.T) {
	f := newFakeCloud(t, "server", "server-not-found")
	c := f.client()
	s, err := c.Server(ctx, recordedID(t, "server"))
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != "ha-vm5" || s.Status != "ACTIVE" || s.VMState != "active" || s.Host != victim ||
		!s.Updated.Equal(time.Date(2026, 12, 6, 9, 46, 33, 0, time.UTC)) {
		t.Errorf("%+v", s)
	}
	_, err = c.Server(ctx, "00000000-0000-0000-0000-000000000000")
	var e *Error
	if !IsNotFound(err) || !errors.As(err, &e) || e.Message != "Instance 00000000-0000-0000-0000-000000000000 could not be found." {
		t.Errorf("%v", err)
	}
}

func TestEvacuate(t *testing.T) {
	first, stopped := recordedID(t, "evacuate-host"), recordedID(t, "evacuate-scheduler")
	for _, tc := range []struct {
		recordings []string // the server as Evacuate reads it, and the evacuate call
		id, host   string
		body       string // sent; "" if nothing may be sent
		check      func(error) bool
		message    string
	}{
		{[]string{"server", "evacuate-host"}, first, target, `{"evacuate":{"host":"cmp1"}}`, func(err error) bool { return err == nil }, ""},
		{[]string{"server-stopped", "evacuate-scheduler"}, stopped, "", `{"evacuate":{}}`, func(err error) bool { return err == nil }, ""},
		{[]string{"server", "evacuate-in-use"}, first, "", `{"evacuate":{}}`, IsServiceInUse, "Compute service of cmp3 is still in use."},
		{[]string{"server", "evacuate-unknown-host"}, first, "cmp9", `{"evacuate":{"host":"cmp9"}}`, IsNotFound, "Compute host cmp9 not found."},
		{[]string{"server", "evacuate-same-host"}, first, victim, `{"evacuate":{"host":"cmp3"}}`,
			func(err error) bool { var e *Error; return errors.As(err, &e) && e.Status == 400 }, "The target host can't be the same one."},
		{[]string{"server-rebuilding"}, first, "", "", func(err error) bool { return errors.Is(err, ErrServerBusy) }, ""},
		{[]string{"server-not-found"}, "00000000-0000-0000-0000-000000000000", "", "", IsNotFound,
			"Instance 00000000-0000-0000-0000-000000000000 could not be found."},
	} {
		t.Run(tc.recordings[len(tc.recordings)-1], func(t *testing.T) {
			f := newFakeCloud(t, tc.recordings...)
			err := f.client().Evacuate(ctx, tc.id, tc.host)
			if !tc.check(err) {
				t.Fatalf("Evacuate(%s, %q): %v", tc.id, tc.host, err)
			}
			var e *Error
			if tc.message != "" && (!errors.As(err, &e) || e.Message != tc.message || !strings.HasPrefix(e.RequestID, "req-")) {
				t.Errorf("%#v, want message %q", e, tc.message)
			}
			var posts []string
			for _, r := range f.requests() {
				if r.Method == http.MethodPost {
					posts = append(posts, string(r.Body))
					if bytes.Contains(r.Body, []byte("onSharedStorage")) || bytes.Contains(r.Body, []byte("adminPass")) {
						t.Errorf("sent %s", r.Body)
					}
				}
			}
			if tc.body == "" && len(posts) > 0 || tc.body != "" && !slices.Equal(posts, []string{tc.body}) {
				t.Errorf("sent %q, want %q", posts, tc.body)
			}
		})
	}
}

// gophercloud's own evacuate request is what Nova refused in the lab: the
// reason for Evacuate's own body.
func TestGophercloudEvacuateRefused(t *testing.T) {
	f := newFakeCloud(t, "evacuate-on-shared-storage")
	c := f.client()
	err := servers.Evacuate(ctx, c.compute, recordedID(t, "evacuate-on-shared-storage"), servers.EvacuateOpts{}).Err
	if e := apiError("evacuate", err); e == nil || !strings.Contains(e.Error(), "Additional properties are not allowed ('onSharedStorage' was unexpected)") {
		t.Errorf("gophercloud's evacuate: %v", e)
	}
}

func TestSettled(t *testing.T) {
	for _, tc := range []struct {
		recording    string
		done, failed bool
	}{
		{"server-rebuilding", false, false},       // just accepted
		{"server-evacuated", true, false},         // ACTIVE on the chosen host
		{"server-stopped-evacuated", true, false}, // SHUTOFF, as it was, on the scheduler's host
		{"server-evacuated-twice", false, false},  // two evacuations raced: REBUILD for good
		{"server", false, true},                   // on the source with no task: had it been evacuated, that failed
	} {
		f := newFakeCloud(t, tc.recording)
		s, err := f.client().Server(ctx, recordedID(t, tc.recording))
		if err != nil {
			t.Fatal(err)
		}
		if done, failed := s.Settled(victim); done != tc.done || failed != tc.failed {
			t.Errorf("%s (%s task %q on %s): done %t failed %t, want %t %t", tc.recording, s.Status, s.TaskState, s.Host, done, failed, tc.done, tc.failed)
		}
	}
	// After the evacuation: on the target, the servers sent there (by the
	// capture and by TestNovaLab) are done; on the victim, only the one
	// evacuated twice is left, under way for good.
	f := newFakeCloud(t, "servers-on-target", "servers-on-host-evacuated")
	c := f.client()
	for _, host := range []string{target, victim} {
		all, err := c.ServersOnHost(ctx, host)
		if err != nil {
			t.Fatal(err)
		}
		var done []string
		for _, s := range all {
			if d, failed := s.Settled(victim); d {
				done = append(done, s.Name)
			} else if failed || s.Name != "ha-vm3" {
				t.Errorf("on %s: %s %s task %q: done %t failed %t", host, s.Name, s.Status, s.TaskState, d, failed)
			}
		}
		t.Logf("on %s: done %v", host, done)
	}
	for _, tc := range []struct {
		name         string
		s            Server
		done, failed bool
	}{
		{"spawning on the target", Server{Status: "REBUILD", TaskState: "rebuild_spawning", Host: target}, false, false},
		{"error", Server{Status: "ERROR", Host: victim, Fault: "No valid host was found."}, false, true},
		{"error on the target", Server{Status: "ERROR", Host: target}, false, true},
	} {
		if done, failed := tc.s.Settled(victim); done != tc.done || failed != tc.failed {
			t.Errorf("%s: done %t failed %t, want %t %t", tc.name, done, failed, tc.done, tc.failed)
		}
	}
}

func TestServerGroupsAndAggregates(t *testing.T) {
	f := newFakeCloud(t, "server-groups-page", "server-groups-end", "aggregates")
	c := f.client()
	groups, err := c.ServerGroups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []ServerGroup{{ID: "24797c7d-8f74-43e3-8c40-9b2b3be29821", Name: "ha-anti", ProjectID: "c35bb7082ecd4d6d8558d907f7fdab53",
		Policies: []string{"anti-affinity"}, Members: []string{"570aee75-ab8c-4037-886e-0790d788db57", "7bbb1c1d-d28b-4c3f-bf8b-5bd8b62297d1"}}}
	if fmt.Sprint(groups) != fmt.Sprint(want) {
		t.Errorf("groups %+v\nwant %+v", groups, want)
	}
	var offsets []string
	for _, r := range f.requests() {
		offsets = append(offsets, r.Query.Get("offset"))
	}
	aggs, err := c.Aggregates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantAgg := []Aggregate{{Name: "ha-ssd", UUID: "1711f323-9676-45fd-a74c-d1a6214e8197", AvailabilityZone: "az-ssd", Hosts: []string{"cmp3"},
		Metadata: map[string]string{"availability_zone": "az-ssd", "ssd": "true", "haconf-reserve": "2"}}}
	if fmt.Sprint(aggs) != fmt.Sprint(wantAgg) {
		t.Errorf("aggregates %+v\nwant %+v", aggs, wantAgg)
	}
	if !slices.Equal(offsets, []string{"0", "1"}) {
		t.Errorf("server group pages at offsets %v, want 0 then 1", offsets)
	}
}

// Providers reads every provider's capacity and usage in two calls: the
// list, then GET /allocation_candidates' provider_summaries (testdata:
// written from the Placement API reference for the lab's three hosts, not
// recorded yet).
func TestProviders(t *testing.T) {
	f := newFakeCloud(t, "resource-providers", "allocation-candidates")
	ps, err := f.client().Providers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	checkLabProviders(t, ps)
	if n := len(f.requests()); n != 2 {
		t.Errorf("%d requests, want 2", n)
	}
}

// checkLabProviders checks what Providers made of the lab's three hosts.
func checkLabProviders(t *testing.T, ps []Provider) {
	t.Helper()
	var names []string
	for _, p := range ps {
		names = append(names, p.Name)
		if p.RootUUID != p.UUID || p.ParentUUID != "" {
			t.Errorf("%s: root %s parent %q", p.Name, p.RootUUID, p.ParentUUID)
		}
		// MediumFakeDriver: 10 vCPUs, 8 GiB, 1 TB; Nova's default ratios
		// (16, 1.5, 1) and reserved memory (512 MB)
		if want := map[string]int{"VCPU": 160, "MEMORY_MB": 11520, "DISK_GB": 1028}; !maps.Equal(p.Capacity, want) {
			t.Errorf("%s: capacity %v, want %v", p.Name, p.Capacity, want)
		}
	}
	if !slices.Equal(names, []string{"cmp2", "cmp3", "cmp1"}) {
		t.Errorf("providers %v", names)
	}
	cmp3 := ps[1]
	if cmp3.Usages["VCPU"] != 6 || cmp3.Usages["MEMORY_MB"] != 1536 || cmp3.Free("VCPU") != 154 || cmp3.Free("MEMORY_MB") != 9984 || cmp3.Free("PCI_DEVICE") != 0 {
		t.Errorf("cmp3: usages %v, free VCPU %d MEMORY_MB %d", cmp3.Usages, cmp3.Free("VCPU"), cmp3.Free("MEMORY_MB"))
	}
}

// A provider tree without one VCPU free is no allocation candidate: it is
// left out (it can take no instance).
func TestProvidersFull(t *testing.T) {
	f := newFakeCloud(t, "resource-providers", "allocation-candidates")
	f.edit("resource-providers", `{"resource_providers": [`, `{"resource_providers": [{"uuid":"00000000-0000-0000-0000-000000000000","name":"cmp9",`+
		`"generation":1,"parent_provider_uuid":null,"root_provider_uuid":"00000000-0000-0000-0000-000000000000"},`)
	ps, err := f.client().Providers(ctx)
	if err != nil || len(ps) != 3 {
		t.Fatalf("%d providers, %v; want the 3 candidates", len(ps), err)
	}
	checkLabProviders(t, ps)
}

// A Placement older than SummariesMicroversion (before Train): each
// provider's inventories and usages are read (the lab's recordings).
func TestProvidersOldPlacement(t *testing.T) {
	f := newFakeCloud(t, "resource-providers", "inventories-cmp1", "usages-cmp1", "inventories-cmp2", "usages-cmp2", "inventories-cmp3", "usages-cmp3")
	f.edit("placement-versions", `"max_version": "1.39"`, `"max_version": "1.28"`)
	ps, err := f.client().Providers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	checkLabProviders(t, ps)
	for _, p := range ps {
		vcpu, mem := p.Inventories["VCPU"], p.Inventories["MEMORY_MB"]
		if vcpu != (Inventory{Total: 10, MinUnit: 1, MaxUnit: 10, StepSize: 1, AllocationRatio: 16}) ||
			mem != (Inventory{Total: 8192, Reserved: 512, MinUnit: 1, MaxUnit: 8192, StepSize: 1, AllocationRatio: 1.5}) {
			t.Errorf("%s: %+v", p.Name, p.Inventories)
		}
	}
	for _, r := range f.requests() {
		if r.Path == "/placement/allocation_candidates" {
			t.Errorf("asked %s of a Placement at 1.28", r.Path)
		}
	}
}

// A provider deleted between the list and its inventories is left out.
func TestProviderGone(t *testing.T) {
	f := newFakeCloud(t, "resource-providers", "inventories-cmp1", "usages-cmp1", "inventories-cmp2", "usages-cmp2",
		"inventories-cmp3", "usages-cmp3", "placement-not-found")
	f.edit("placement-versions", `"max_version": "1.39"`, `"max_version": "1.28"`)
	f.edit("resource-providers", `{"resource_providers": [`, `{"resource_providers": [{"uuid":"00000000-0000-0000-0000-000000000000","name":"cmp9",`+
		`"generation":1,"parent_provider_uuid":null,"root_provider_uuid":"00000000-0000-0000-0000-000000000000"},`)
	ps, err := f.client().Providers(ctx)
	if err != nil || len(ps) != 3 {
		t.Errorf("%d providers, %v; want the 3 left", len(ps), err)
	}
}

func TestPlacementError(t *testing.T) {
	f := newFakeCloud(t, "placement-not-found")
	c := f.client()
	p := &Provider{UUID: "00000000-0000-0000-0000-000000000000", Name: "cmp9"}
	err := c.readProvider(ctx, p)
	var e *Error
	if !errors.As(err, &e) || !IsNotFound(err) || e.Message != "No resource provider with uuid 00000000-0000-0000-0000-000000000000 found" ||
		e.RequestID != "req-a314828e-17c4-4f87-a566-eb6fb1048172" {
		t.Errorf("%#v", err)
	}
}

func TestCapacity(t *testing.T) {
	for _, tc := range []struct {
		inv  Inventory
		want int
	}{
		{Inventory{Total: 10, AllocationRatio: 16}, 160},
		{Inventory{Total: 8192, Reserved: 512, AllocationRatio: 1.5}, 11520},
		{Inventory{Total: 7, AllocationRatio: 1.5}, 10}, // 10.5 floored
		{Inventory{Total: 1000, Reserved: 1, AllocationRatio: 1}, 999},
		{Inventory{Total: 1, Reserved: 2, AllocationRatio: 1}, 0},
	} {
		if got := tc.inv.Capacity(); got != tc.want {
			t.Errorf("%+v: %d, want %d", tc.inv, got, tc.want)
		}
	}
}

func TestErrorMessage(t *testing.T) {
	for _, tc := range []struct{ body, msg, code string }{
		{`{"badRequest": {"code": 400, "message": "Compute service of cmp1 is still in use."}}`, "Compute service of cmp1 is still in use.", ""},
		{`{"conflictingRequest": {"code": 409, "message": "Cannot 'evacuate' instance x while it is in task_state rebuilding"}}`, "Cannot 'evacuate' instance x while it is in task_state rebuilding", ""},
		{`{"error": {"code": 401, "title": "Unauthorized", "message": "The request you have made requires authentication."}}`, "The request you have made requires authentication.", ""},
		{`{"errors": [{"status": 409, "title": "Conflict", "detail": "There was a conflict when trying to complete your request.\n\n resource provider generation conflict  ", "code": "placement.concurrent_update"}]}`,
			"resource provider generation conflict", "placement.concurrent_update"},
		{`{"errors": [{"status": 404, "title": "Not Found", "detail": ""}]}`, "Not Found", ""},
		{"<html><body>502 Bad Gateway</body></html>\n", "<html><body>502 Bad Gateway</body></html>", ""},
	} {
		msg, code := errorMessage([]byte(tc.body))
		if msg != tc.msg || code != tc.code {
			t.Errorf("%s: %q %q, want %q %q", tc.body, msg, code, tc.msg, tc.code)
		}
	}
}

func TestRetryable(t *testing.T) {
	for _, tc := range []struct {
		e    Error
		want bool
	}{
		{Error{Status: 503}, true},
		{Error{Status: 500}, true},
		{Error{Status: 501}, false},
		{Error{Status: 429}, true},
		{Error{Status: 409, Message: "Cannot 'resize' instance x while it is in task_state rebuilding"}, true},
		{Error{Status: 409, Message: "Cannot 'evacuate' instance x while it is in vm_state building"}, false},
		{Error{Status: 409, Code: "placement.concurrent_update"}, true},
		{Error{Status: 400, Message: "Compute service of cmp1 is still in use."}, false},
		{Error{Status: 404}, false},
	} {
		if got := tc.e.Retryable(); got != tc.want {
			t.Errorf("%+v: %t, want %t", tc.e, got, tc.want)
		}
	}
}

// The client keeps a connection per call it makes at once: three waves
// of 32 calls at once open 32 connections, not 32 and then 28 per wave
// (with 4 idle connections kept, each call beyond 4 closed its
// connection and left it in TIME_WAIT).
func TestHTTPClientReusesConnections(t *testing.T) {
	var opened atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(20 * time.Millisecond)
		io.WriteString(w, "{}")
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			opened.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	hc := HTTPClient(32)
	for range 3 {
		var wg sync.WaitGroup
		for range 32 {
			wg.Go(func() {
				resp, err := hc.Get(srv.URL)
				if err != nil {
					t.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			})
		}
		wg.Wait()
	}
	if n := opened.Load(); n > 32 {
		t.Errorf("%d connections opened for 3 waves of 32 calls at once, want at most 32", n)
	}
}
