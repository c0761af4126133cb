package watchdog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/haconf/haconf/drbd"
	"github.com/haconf/haconf/splitbrain"
)

type stubNode struct{ name string }

func (s stubNode) NodeName() string { return s.name }
func (s stubNode) Evidence(ctx context.Context, r string) (splitbrain.NodeEvidence, error) {
	if r != "r0" {
		return splitbrain.NodeEvidence{}, fmt.Errorf("%w: %q", drbd.ErrUnknownResource, r)
	}
	return splitbrain.NodeEvidence{Node: s.name, Reachable: true, State: drbd.Resource{Name: "r0", Connection: drbd.ConnStandAlone, OutOfSyncKiB: 52}}, nil
}
func (s stubNode) State(ctx context.Context, r string) (drbd.Resource, error) {
	ev, err := s.Evidence(ctx, r)
	return ev.State, err
}

type stubApplier struct{ agree bool }

func (a stubApplier) ApplyForPeer(ctx context.Context, req splitbrain.PeerRequest) (splitbrain.PeerResult, error) {
	if !a.agree {
		return splitbrain.PeerResult{Node: "ctl2"}, fmt.Errorf("%w: ctl2 decided otherwise", splitbrain.ErrDisagree)
	}
	return splitbrain.PeerResult{Node: "ctl2", Preserved: &splitbrain.Preserved{Node: "ctl2", Kind: splitbrain.PreservedCopy, Path: "/var/lib/haconf/splitbrain/r0-x.img", Verified: true}}, nil
}

// testKey is the peer key both sides of a test share.
var testKey = mustDerive(bytes.Repeat([]byte("corosync authkey "), 16))

func mustDerive(secret []byte) []byte {
	k, err := DerivePeerKey(secret)
	if err != nil {
		panic(err)
	}
	return k
}

func newServer(t *testing.T, agree bool, allow ...string) (*httptest.Server, *PeerClient) {
	sb := &SplitBrainCheck{Resource: "r0"}
	sb.set(true, nil)
	s := &Server{Watchdog: &Watchdog{Specs: []Spec{{Check: sb}}}, Node: stubNode{"ctl2"}, Applier: stubApplier{agree}, SplitBrain: sb,
		DRBD: &DRBDState{}, Incidents: &splitbrain.IncidentStore{Dir: t.TempDir()}, Key: testKey}
	s.DRBD.Set(drbd.Status{Resources: []drbd.Resource{{Name: "r0", Role: "Secondary", Disk: "UpToDate", Connection: "StandAlone", OutOfSyncKiB: 52}}})
	for _, a := range allow {
		s.ApplyFrom = append(s.ApplyFrom, netip.MustParseAddr(a))
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return ts, &PeerClient{Name: "ctl2", BaseURL: ts.URL, Key: testKey}
}

func TestPeerClientRoundTrip(t *testing.T) {
	ts, pc := newServer(t, true, "127.0.0.1")
	ctx := context.Background()
	ev, err := pc.Evidence(ctx, "r0")
	if err != nil || ev.Node != "ctl2" || ev.State.OutOfSyncKiB != 52 {
		t.Fatalf("%+v %v", ev, err)
	}
	if _, err := pc.Evidence(ctx, "r9"); !errors.Is(err, drbd.ErrUnknownResource) {
		t.Fatalf("unknown resource: %v", err)
	}
	res, err := pc.Apply(ctx, splitbrain.PeerRequest{ID: "x", Resource: "r0", From: "ctl1"})
	if err != nil || res.Preserved == nil || res.Preserved.Path == "" {
		t.Fatalf("%+v %v", res, err)
	}
	list, err := pc.Incidents(ctx)
	if err != nil || len(list) != 0 {
		t.Fatalf("%v %v", list, err)
	}
	for path, want := range map[string]string{"/healthz": "ok", "/metrics": `haconf_drbd_split_brain{resource="r0"} 1`, "/status": `{"schema":"haconf.watchdog.status/v1","node":"ctl2"`} {
		resp, err := http.Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(b), want) {
			t.Errorf("%s lacks %q:\n%s", path, want, b)
		}
	}
}

func TestApplyRefusals(t *testing.T) {
	_, pc := newServer(t, false, "127.0.0.1")
	if _, err := pc.Apply(context.Background(), splitbrain.PeerRequest{Resource: "r0"}); !errors.Is(err, splitbrain.ErrDisagree) {
		t.Fatalf("disagree: %v", err)
	}
	_, pc = newServer(t, true, "192.0.2.11")
	if _, err := pc.Apply(context.Background(), splitbrain.PeerRequest{Resource: "r0"}); err == nil || !strings.Contains(err.Error(), "403") && !strings.Contains(err.Error(), "only the peer") {
		t.Fatalf("stranger allowed: %v", err)
	}
	pc = &PeerClient{Name: "ctl2", BaseURL: "http://127.0.0.1:1", Key: testKey}
	if _, err := pc.Evidence(context.Background(), "r0"); !errors.Is(err, splitbrain.ErrPeerUnreachable) {
		t.Fatalf("unreachable: %v", err)
	}
}

type fakeEngine struct {
	plan       *splitbrain.Plan
	planErr    error
	resolveErr error
	resolved   int
	lastOpts   splitbrain.ResolveOptions
}

func (f *fakeEngine) Plan(ctx context.Context, r string, p splitbrain.Policy) (*splitbrain.Plan, error) {
	return f.plan, f.planErr
}
func (f *fakeEngine) Resolve(ctx context.Context, r string, o splitbrain.ResolveOptions) (*splitbrain.Incident, error) {
	f.resolved++
	f.lastOpts = o
	return &splitbrain.Incident{ID: "x"}, f.resolveErr
}

func TestSplitBrainCheck(t *testing.T) {
	plan := &splitbrain.Plan{Actor: "ctl1", Decision: splitbrain.Decision{Action: splitbrain.ActionResolve, Victim: "ctl2", Relation: drbd.RelSplitBrain}}
	// On the victim: the check fails (split brain) but remediation leaves
	// the work to the survivor.
	victim := &SplitBrainCheck{Engine: &fakeEngine{plan: plan, resolveErr: splitbrain.ErrNotSurvivor}, Local: stubNode{"ctl2"}, Resource: "r0"}
	if err := victim.Run(context.Background()); !errors.Is(err, splitbrain.ErrSplitBrain) || !victim.Active() {
		t.Fatalf("Run = %v", err)
	}
	if err := victim.Remediate(context.Background()); err != nil {
		t.Fatalf("victim Remediate = %v", err)
	}
	if n := victim.Engine.(*fakeEngine).resolved; n != 0 {
		t.Fatalf("the victim called Resolve %d times: the survivor acts", n)
	}
	// On the survivor: Resolve acts on the check's fresh plan.
	survivor := &SplitBrainCheck{Engine: &fakeEngine{plan: plan}, Local: stubNode{"ctl1"}, Resource: "r0"}
	survivor.Run(context.Background())
	if err := survivor.Remediate(context.Background()); err != nil {
		t.Fatalf("survivor Remediate = %v", err)
	}
	if f := survivor.Engine.(*fakeEngine); f.resolved != 1 || f.lastOpts.Plan != plan {
		t.Fatalf("survivor: Resolve called %d times with plan %p, want once with the check's %p", f.resolved, f.lastOpts.Plan, plan)
	}
	// Refusals keep the check failing and are reported.
	refuse := &SplitBrainCheck{Engine: &fakeEngine{plan: &splitbrain.Plan{}, planErr: splitbrain.ErrUnrelatedData}, Local: stubNode{"ctl1"}, Resource: "r0"}
	if err := refuse.Run(context.Background()); !errors.Is(err, splitbrain.ErrSplitBrain) || !refuse.Active() {
		t.Fatalf("refusal Run = %v active=%v", err, refuse.Active())
	}
	// Disconnected without divergence is not a split brain.
	calm := &SplitBrainCheck{Engine: &fakeEngine{planErr: splitbrain.ErrNoSplitBrain}, Local: stubNode{"ctl1"}, Resource: "r0"}
	if err := calm.Run(context.Background()); err != nil || calm.Active() {
		t.Fatalf("no split brain: %v", err)
	}
}

// stateOnly is a node whose DRBD state is fixed.
type stateOnly struct{ r drbd.Resource }

func (s stateOnly) State(context.Context, string) (drbd.Resource, error) { return s.r, nil }

// countingEngine counts the evidence gatherings (Plan) a check asks for.
type countingEngine struct {
	fakeEngine
	plans int
}

func (c *countingEngine) Plan(ctx context.Context, r string, p splitbrain.Policy) (*splitbrain.Plan, error) {
	c.plans++
	return c.fakeEngine.Plan(ctx, r, p)
}

// While DRBD still tries to connect (the peer crashed, a link is cut) the
// check gathers no evidence: it would run crm_mon, lvs, ip and a MariaDB
// probe every interval on the node taking over. A StandAlone resource (DRBD
// found the split brain) is planned for.
func TestSplitBrainCheckWaitsForDRBD(t *testing.T) {
	for _, tc := range []struct {
		r     drbd.Resource
		plans int
	}{
		{drbd.Resource{Connection: drbd.ConnConnecting, Role: drbd.RolePrimary, Disk: drbd.DiskUpToDate}, 0},
		{drbd.Resource{Connection: drbd.ConnConnected, Disk: drbd.DiskUpToDate, PeerDisk: drbd.DiskUpToDate}, 0},
		{drbd.Resource{Connection: drbd.ConnConnecting, SplitBrain: true}, 1},
		{drbd.Resource{Connection: drbd.ConnStandAlone}, 1},
	} {
		e := &countingEngine{fakeEngine: fakeEngine{planErr: splitbrain.ErrNoSplitBrain}}
		c := &SplitBrainCheck{Engine: e, Local: stateOnly{tc.r}, Resource: "r0"}
		if err := c.Run(context.Background()); err != nil || c.Active() {
			t.Errorf("%+v: Run = %v, active %v", tc.r, err, c.Active())
		}
		if e.plans != tc.plans {
			t.Errorf("%+v: %d evidence gatherings, want %d", tc.r, e.plans, tc.plans)
		}
	}
}

// With a token, /status and /metrics answer only a request that carries
// it as a bearer token; /healthz and the peer API do not ask for it.
func TestToken(t *testing.T) {
	token := []byte("s3cret-token-0123456789")
	s := &Server{Watchdog: &Watchdog{}, Node: stubNode{"ctl2"}, Incidents: &splitbrain.IncidentStore{Dir: t.TempDir()}, Key: testKey, Token: token}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	get := func(path, auth string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, ts.URL+path, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode == http.StatusUnauthorized && resp.Header.Get("WWW-Authenticate") != `Bearer realm="haconf watchdog"` {
			t.Errorf("%s: WWW-Authenticate = %q", path, resp.Header.Get("WWW-Authenticate"))
		}
		return resp.StatusCode, string(b)
	}
	for _, path := range []string{"/status", "/metrics"} {
		for _, auth := range []string{"", "Bearer wrong-token-0123456789", "Bearer " + string(token[:len(token)-1]), "Basic " + string(token), string(token)} {
			if code, body := get(path, auth); code != http.StatusUnauthorized || strings.Contains(body, string(token)) {
				t.Errorf("%s with %q: HTTP %d: %s", path, auth, code, body)
			}
		}
		for _, auth := range []string{"Bearer " + string(token), "bearer " + string(token)} {
			if code, body := get(path, auth); code != http.StatusOK {
				t.Errorf("%s with the token: HTTP %d: %s", path, code, body)
			}
		}
	}
	if code, _ := get("/healthz", ""); code != http.StatusOK {
		t.Errorf("/healthz without the token: HTTP %d", code)
	}
	pc := &PeerClient{Name: "ctl2", BaseURL: ts.URL, Key: testKey}
	if _, err := pc.Incidents(context.Background()); err != nil {
		t.Errorf("peer API without the token: %v", err)
	}
}
