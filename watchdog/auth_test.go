package watchdog

import (
	"bytes"
	"cmp"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/haconf/haconf/drbd"
	"github.com/haconf/haconf/internal/testenv"
	"github.com/haconf/haconf/splitbrain"
)

// countingApplier records every decision that reached it.
type countingApplier struct {
	mu    sync.Mutex
	calls []splitbrain.PeerRequest
}

func (a *countingApplier) ApplyForPeer(ctx context.Context, req splitbrain.PeerRequest) (splitbrain.PeerResult, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.calls = append(a.calls, req)
	return splitbrain.PeerResult{Node: "ctl2"}, nil
}

func (a *countingApplier) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.calls)
}

var authNow = time.Date(2026, 5, 7, 12, 0, 0, 0, time.UTC)

type authServer struct {
	ts      *httptest.Server
	applier *countingApplier
	log     *testenv.SyncBuffer
	// read counts the bytes the server read from its connections.
	read atomic.Int64
}

// testClock is a clock that moves when told.
type testClock struct{ ns atomic.Int64 }

func newTestClock(at time.Time) *testClock {
	c := &testClock{}
	c.set(at)
	return c
}

func (c *testClock) set(at time.Time) { c.ns.Store(at.UnixNano()) }
func (c *testClock) now() time.Time   { return time.Unix(0, c.ns.Load()) }

// newAuthServer is a peer API that started a minute before authNow and
// whose clock stays at authNow.
func newAuthServer(t *testing.T, key []byte, allow string) *authServer {
	clock := newTestClock(authNow.Add(-time.Minute))
	a := newAuthServerClock(t, key, allow, clock.now)
	clock.set(authNow)
	return a
}

// newAuthServerClock is a peer API that starts now, by clock.
func newAuthServerClock(t *testing.T, key []byte, allow string, clock func() time.Time) *authServer {
	t.Helper()
	a := &authServer{applier: &countingApplier{}, log: &testenv.SyncBuffer{}}
	s := &Server{Watchdog: &Watchdog{}, Node: stubNode{"ctl2"}, Applier: a.applier, Incidents: &splitbrain.IncidentStore{Dir: t.TempDir()},
		ApplyFrom: []netip.Addr{netip.MustParseAddr(allow)}, Key: key,
		Log: slog.New(slog.NewTextHandler(a.log, nil)), now: clock}
	a.ts = httptest.NewUnstartedServer(s.Handler())
	a.ts.Listener = countingListener{a.ts.Listener, &a.read}
	a.ts.Start()
	t.Cleanup(a.ts.Close)
	return a
}

// countingListener counts what the server reads from its connections.
type countingListener struct {
	net.Listener
	n *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return countingConn{c, l.n}, nil
}

type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c countingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.n.Add(int64(n))
	return n, err
}

// signed is a request as a peer would send it, with every signed field
// open to change.
type signed struct {
	key    []byte
	node   string
	method string
	uri    string
	at     time.Time
	nonce  string
	body   []byte
}

func validApply() signed {
	body, _ := json.Marshal(splitbrain.PeerRequest{ID: "i1", Resource: "r0", From: "ctl1", Decision: splitbrain.Decision{Action: splitbrain.ActionResolve, Victim: "ctl2"}})
	return signed{key: testKey, node: "ctl2", method: http.MethodPost, uri: "/v1/splitbrain/apply", at: authNow, nonce: strings.Repeat("ab", 16), body: body}
}

// headers are the authentication headers for s.
func (s signed) headers() http.Header {
	ts := strconv.FormatInt(s.at.Unix(), 10)
	h := http.Header{}
	h.Set(headerTimestamp, ts)
	h.Set(headerNonce, s.nonce)
	h.Set(headerSignature, hex.EncodeToString(requestMAC(s.key, s.node, s.method, s.uri, ts, s.nonce, s.body)))
	return h
}

func send(t *testing.T, base, method, uri string, h http.Header, body []byte) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, base+uri, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// wire is what goes to the server.
type wire struct {
	method, uri string
	h           http.Header
	body        []byte
}

func TestPeerAPIAuthentication(t *testing.T) {
	otherKey := mustDerive(bytes.Repeat([]byte("another cluster "), 16))
	for _, tc := range []struct {
		name   string
		sign   func(*signed) // changes what is signed
		send   func(*wire)   // changes what is sent
		allow  string        // ApplyFrom (default 127.0.0.1)
		code   int
		reason string // in the log, and in the answer unless answer is set
		answer string
	}{
		{name: "valid", code: http.StatusOK},
		{name: "timestamp within the skew", sign: func(s *signed) { s.at = authNow.Add(-MaxClockSkew + time.Second) }, code: http.StatusOK},
		{name: "wrong key", sign: func(s *signed) { s.key = otherKey }, code: http.StatusUnauthorized, reason: "bad signature"},
		{name: "old timestamp", sign: func(s *signed) { s.at = authNow.Add(-MaxClockSkew - time.Second) }, code: http.StatusUnauthorized, reason: "timestamp too far"},
		{name: "future timestamp", sign: func(s *signed) { s.at = authNow.Add(MaxClockSkew + time.Second) }, code: http.StatusUnauthorized, reason: "timestamp too far"},
		{name: "signed for the other node", sign: func(s *signed) { s.node = "ctl1" }, code: http.StatusUnauthorized, reason: "bad signature"},
		{name: "tampered body", send: func(w *wire) { w.body = bytes.Replace(w.body, []byte(`"ctl2"`), []byte(`"ctl1"`), 1) },
			code: http.StatusUnauthorized, reason: "bad signature"},
		{name: "tampered query", sign: func(s *signed) { s.method, s.uri, s.body = http.MethodGet, "/v1/drbd/state?resource=r0", nil },
			send: func(w *wire) { w.uri = "/v1/drbd/state?resource=r1" }, code: http.StatusUnauthorized, reason: "bad signature"},
		{name: "other method", send: func(w *wire) { w.method = http.MethodPut }, code: http.StatusUnauthorized, reason: "bad signature"},
		{name: "missing signature", send: func(w *wire) { w.h.Del(headerSignature) }, code: http.StatusUnauthorized, reason: "missing signature headers"},
		{name: "no headers", send: func(w *wire) { w.h = http.Header{} }, code: http.StatusUnauthorized, reason: "missing signature headers"},
		{name: "malformed timestamp", send: func(w *wire) { w.h.Set(headerTimestamp, "+"+w.h.Get(headerTimestamp)) }, code: http.StatusUnauthorized, reason: "malformed timestamp"},
		{name: "malformed nonce", send: func(w *wire) { w.h.Set(headerNonce, "abc") }, code: http.StatusUnauthorized, reason: "malformed nonce"},
		{name: "valid signature, stranger's address", allow: "192.0.2.11", code: http.StatusForbidden, reason: "source address not allowed",
			answer: "only the peer controller may ask this node"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			allow := "127.0.0.1"
			if tc.allow != "" {
				allow = tc.allow
			}
			a := newAuthServer(t, testKey, allow)
			s := validApply()
			if tc.sign != nil {
				tc.sign(&s)
			}
			w := wire{method: s.method, uri: s.uri, h: s.headers(), body: s.body}
			if tc.send != nil {
				tc.send(&w)
			}
			resp, got := send(t, a.ts.URL, w.method, w.uri, w.h, w.body)
			if resp.StatusCode != tc.code {
				t.Fatalf("HTTP %d, want %d: %s", resp.StatusCode, tc.code, got)
			}
			if tc.code == http.StatusOK {
				if a.applier.count() != 1 {
					t.Fatalf("the applier ran %d times, want 1", a.applier.count())
				}
				if !verifyResponse(testKey, s.nonce, resp.StatusCode, got, resp.Header.Get(headerSignature)) {
					t.Fatalf("answer not signed for nonce %s: %q", s.nonce, resp.Header.Get(headerSignature))
				}
				return
			}
			if n := a.applier.count(); n != 0 {
				t.Fatalf("a refused request reached the applier %d times", n)
			}
			if want := cmp.Or(tc.answer, tc.reason); !strings.Contains(string(got), want) {
				t.Errorf("answer %s lacks %q", got, want)
			}
			if tc.code == http.StatusUnauthorized && resp.Header.Get("WWW-Authenticate") != authScheme {
				t.Errorf("WWW-Authenticate = %q", resp.Header.Get("WWW-Authenticate"))
			}
			logged := a.log.String()
			if !strings.Contains(logged, `msg="peer request rejected"`) || !strings.Contains(logged, tc.reason) || !strings.Contains(logged, "remote=127.0.0.1:") {
				t.Errorf("rejection not logged with its reason and address:\n%s", logged)
			}
			for _, secret := range []string{hex.EncodeToString(testKey), hex.EncodeToString(otherKey), string(testKey), w.h.Get(headerSignature)} {
				if secret != "" && strings.Contains(logged, secret) {
					t.Errorf("the log holds key material or the signature:\n%s", logged)
				}
			}
		})
	}
}

func TestPeerAPIReplay(t *testing.T) {
	a := newAuthServer(t, testKey, "127.0.0.1")
	s := validApply()
	h := s.headers()
	if resp, b := send(t, a.ts.URL, s.method, s.uri, h, s.body); resp.StatusCode != http.StatusOK {
		t.Fatalf("first: HTTP %d: %s", resp.StatusCode, b)
	}
	resp, b := send(t, a.ts.URL, s.method, s.uri, h, s.body)
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(b), "replayed request") {
		t.Fatalf("replay within the skew window: HTTP %d: %s", resp.StatusCode, b)
	}
	if n := a.applier.count(); n != 1 {
		t.Fatalf("the applier ran %d times, want 1", n)
	}
	// The same request a fresh nonce is a new request.
	s.nonce = strings.Repeat("cd", 16)
	if resp, b := send(t, a.ts.URL, s.method, s.uri, s.headers(), s.body); resp.StatusCode != http.StatusOK {
		t.Fatalf("fresh nonce: HTTP %d: %s", resp.StatusCode, b)
	}
}

// A request accepted before a restart is refused after it: the new
// process's nonce cache is empty, but the request was signed before the
// process started.
func TestPeerAPIReplayAfterRestart(t *testing.T) {
	before := newAuthServer(t, testKey, "127.0.0.1")
	s := validApply()
	h := s.headers()
	if resp, b := send(t, before.ts.URL, s.method, s.uri, h, s.body); resp.StatusCode != http.StatusOK {
		t.Fatalf("before the restart: HTTP %d: %s", resp.StatusCode, b)
	}
	// The watchdog restarts 5 s later, well within MaxClockSkew of the
	// request's timestamp.
	restarted := authNow.Add(5 * time.Second)
	after := newAuthServerClock(t, testKey, "127.0.0.1", func() time.Time { return restarted })
	resp, b := send(t, after.ts.URL, s.method, s.uri, h, s.body)
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(b), "signed before this watchdog started") || after.applier.count() != 0 {
		t.Fatalf("replay after the restart: HTTP %d: %s (applier ran %d times)", resp.StatusCode, b, after.applier.count())
	}
	if !strings.Contains(after.log.String(), "signed before this watchdog started") {
		t.Errorf("refusal not logged:\n%s", after.log.String())
	}
	// A request signed after the restart is accepted.
	s.at, s.nonce = restarted.Add(time.Second), strings.Repeat("ef", 16)
	if resp, b := send(t, after.ts.URL, s.method, s.uri, s.headers(), s.body); resp.StatusCode != http.StatusOK || after.applier.count() != 1 {
		t.Fatalf("fresh request after the restart: HTTP %d: %s", resp.StatusCode, b)
	}
}

// A request signed in the second the peer started is refused (it could
// have been sent before the start); the client signs it again in the next
// second and gets its answer.
func TestPeerClientSignsAgainAfterRestart(t *testing.T) {
	// A clock at the middle of a second: the watchdog starts at S.5, the
	// first request is dated S.
	now := time.Now()
	off := (1500*time.Millisecond - time.Duration(now.Nanosecond())) % time.Second
	clock := func() time.Time { return time.Now().Add(off) }
	a := newAuthServerClock(t, testKey, "127.0.0.1", clock)
	pc := &PeerClient{Name: "ctl2", BaseURL: a.ts.URL, Key: testKey, now: clock}
	if _, err := pc.Apply(context.Background(), splitbrain.PeerRequest{ID: "i1", Resource: "r0"}); err != nil {
		t.Fatalf("apply right after the peer started: %v", err)
	}
	if a.applier.count() != 1 {
		t.Fatalf("the applier ran %d times, want 1", a.applier.count())
	}
	if n := strings.Count(a.log.String(), "signed before this watchdog started"); n != 1 {
		t.Errorf("%d refusals of the first request, want 1 (a slow test host?):\n%s", n, a.log.String())
	}
}

// rawRequest sends head (a request line and headers, without the blank
// line) and then body from another goroutine, and returns the answer read
// until the server closes the connection.
func rawRequest(t *testing.T, addr string, head http.Header, first string, body func(io.Writer)) string {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var b strings.Builder
	b.WriteString(first + "\r\nHost: ctl2\r\n")
	_ = head.Write(&b)
	b.WriteString("\r\n")
	if _, err := io.WriteString(conn, b.String()); err != nil {
		t.Fatal(err)
	}
	if body != nil {
		go body(conn)
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, _ := io.ReadAll(conn)
	return string(got)
}

// A body larger than maxPeerBody is refused with 413 without being read:
// at once when its length is declared, after maxPeerBody bytes when it is
// chunked (net/http then discards at most 256 KiB looking for its end).
// Headers are checked first: a stale request is refused before its body.
func TestPeerBodyTooLarge(t *testing.T) {
	const huge = 16 << 20
	s := validApply()
	for _, tc := range []struct {
		name   string
		at     time.Time
		header http.Header
		body   func(io.Writer)
		want   string
		read   int64 // at most, by the server
	}{
		{name: "declared, nothing sent", at: authNow, header: http.Header{"Content-Length": {fmt.Sprint(huge)}},
			want: "HTTP/1.1 413", read: 4 << 10},
		{name: "stale, declared", at: authNow.Add(-time.Hour), header: http.Header{"Content-Length": {fmt.Sprint(huge)}},
			want: "HTTP/1.1 401", read: 4 << 10},
		{name: "chunked", at: authNow, header: http.Header{"Transfer-Encoding": {"chunked"}}, body: func(w io.Writer) {
			chunk := fmt.Sprintf("%x\r\n%s\r\n", 64<<10, bytes.Repeat([]byte("x"), 64<<10))
			for range huge / (64 << 10) {
				if _, err := io.WriteString(w, chunk); err != nil {
					return
				}
			}
		}, want: "HTTP/1.1 413", read: maxPeerBody + 256<<10 + 128<<10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newAuthServer(t, testKey, "127.0.0.1")
			s.at = tc.at
			h := s.headers()
			for k, v := range tc.header {
				h[k] = v
			}
			got := rawRequest(t, a.ts.Listener.Addr().String(), h, "POST /v1/splitbrain/apply HTTP/1.1", tc.body)
			if !strings.HasPrefix(got, tc.want) {
				t.Fatalf("answer %q, want %s", got, tc.want)
			}
			if n := a.read.Load(); n > tc.read {
				t.Errorf("the server read %d bytes of a %d byte body, want at most %d", n, huge, tc.read)
			}
			if a.applier.count() != 0 {
				t.Error("the request reached the applier")
			}
		})
	}

	// A body of exactly maxPeerBody bytes is read and checked.
	a := newAuthServer(t, testKey, "127.0.0.1")
	s = validApply()
	s.body = append(s.body, bytes.Repeat([]byte(" "), maxPeerBody-len(s.body))...)
	if resp, b := send(t, a.ts.URL, s.method, s.uri, s.headers(), s.body); resp.StatusCode != http.StatusOK || a.applier.count() != 1 {
		t.Fatalf("a %d byte body: HTTP %d: %s", len(s.body), resp.StatusCode, b)
	}
}

// The largest apply request there can be (every error in the evidence as
// long as the runner keeps stderr, long histories) fits in maxPeerBody
// with room to spare.
func TestPeerRequestSize(t *testing.T) {
	long := strings.Repeat("x", 4096+200) // a runner error: argv, exit code, 4 KiB of stderr
	gi := drbd.GI{Current: 0x6C787FD3E962CB2B, Bitmap: 0x6C787FD3E962CB2A, History: []uint64{1, 2, 3, 4}, Flags: []int{1, 0, 1, 1, 1, 1, 0, 0}, Raw: strings.Repeat("6C787FD3E962CB2B:", 4) + "1:0:1:1:1:1:0:0"}
	yes := true
	node := func(name string) splitbrain.NodeEvidence {
		return splitbrain.NodeEvidence{Node: name, Reachable: true, Error: long, Version: "8.4.11",
			State: drbd.Resource{Name: "r0", Role: "Primary", Disk: "UpToDate", Connection: "StandAlone", Replication: "Off", Protocol: "C", PeerName: "ctl1", PeerRole: "Unknown", PeerDisk: "DUnknown", OutOfSyncKiB: 1 << 40, Sync: &drbd.SyncProgress{}},
			GI:    gi, SplitBrainAt: authNow, HasVIP: &yes, MySQL: &splitbrain.MySQLEvidence{Running: true, File: "mysql-bin.000123", Position: 1 << 40},
			Cluster: &splitbrain.ClusterView{Promoted: []string{"ctl1", "ctl2"}, PromotedAt: authNow, VIPOn: []string{"ctl1", "ctl2"}, FenceOwner: "ctl1", Online: []string{"ctl1", "ctl2"}, Managed: true, Error: long},
			Backing: splitbrain.Backing{Device: "/dev/vg-haconf/lv-drbd", SizeBytes: 1 << 40, VG: "vg-haconf", LV: "lv-drbd"}, CollectedAt: authNow}
	}
	req := splitbrain.PeerRequest{ID: "r0-20261206T120000Z", Resource: "r0", From: "ctl1",
		Decision: splitbrain.Decision{Policy: splitbrain.Policy{Name: "prefer", Prefer: "ctl1"}, Action: splitbrain.ActionResolve, Victim: "ctl2", Survivor: "ctl1",
			Relation: drbd.RelSplitBrain, Authorized: "ctl1", VictimChangesKiB: 1 << 40, SurvivorChangesKiB: 1 << 40, Reason: strings.Repeat("r", 500),
			Conflicts: []string{strings.Repeat("c", 300), strings.Repeat("c", 300), strings.Repeat("c", 300)}, Advice: strings.Repeat("a", 300)},
		Evidence: splitbrain.Evidence{Resource: "r0", Nodes: [2]splitbrain.NodeEvidence{node("ctl1"), node("ctl2")}}}
	b, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > maxPeerBody/2 {
		t.Fatalf("the largest apply request has %d bytes: maxPeerBody (%d) leaves too little room", len(b), maxPeerBody)
	}
	t.Logf("largest apply request: %d bytes of %d", len(b), maxPeerBody)
}

func TestPeerAPIOpenAndClosedRoutes(t *testing.T) {
	a := newAuthServer(t, testKey, "127.0.0.1")
	for _, path := range []string{"/healthz", "/status", "/metrics"} {
		if resp, b := send(t, a.ts.URL, http.MethodGet, path, nil, nil); resp.StatusCode != http.StatusOK {
			t.Errorf("%s without a signature: HTTP %d: %s", path, resp.StatusCode, b)
		}
	}
	for _, path := range []string{"/v1/drbd/evidence?resource=r0", "/v1/drbd/state?resource=r0", "/v1/incidents", "/v1/unknown"} {
		if resp, b := send(t, a.ts.URL, http.MethodGet, path, nil, nil); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s without a signature: HTTP %d: %s", path, resp.StatusCode, b)
		}
	}
	// A server without a key refuses even a signed request.
	keyless := newAuthServer(t, nil, "127.0.0.1")
	s := validApply()
	if resp, b := send(t, keyless.ts.URL, s.method, s.uri, s.headers(), s.body); resp.StatusCode != http.StatusUnauthorized || keyless.applier.count() != 0 {
		t.Errorf("keyless server: HTTP %d: %s", resp.StatusCode, b)
	}
}

func TestPeerClientAuthentication(t *testing.T) {
	a := newAuthServer(t, testKey, "127.0.0.1")
	pc := &PeerClient{Name: "ctl2", BaseURL: a.ts.URL, Key: testKey, now: func() time.Time { return authNow }}
	if _, err := pc.Apply(context.Background(), splitbrain.PeerRequest{ID: "i1", Resource: "r0"}); err != nil {
		t.Fatalf("signed apply: %v", err)
	}
	if _, err := pc.Evidence(context.Background(), "r0"); err != nil {
		t.Fatalf("signed evidence: %v", err)
	}

	wrong := &PeerClient{Name: "ctl2", BaseURL: a.ts.URL, Key: mustDerive(bytes.Repeat([]byte("x"), 64)), now: pc.now}
	_, err := wrong.Apply(context.Background(), splitbrain.PeerRequest{ID: "i2", Resource: "r0"})
	if !errors.Is(err, ErrPeerAuth) || !strings.Contains(err.Error(), "bad signature") {
		t.Fatalf("wrong key: %v", err)
	}
	skewed := &PeerClient{Name: "ctl2", BaseURL: a.ts.URL, Key: testKey, now: func() time.Time { return authNow.Add(time.Minute) }}
	if _, err := skewed.Incidents(context.Background()); !errors.Is(err, ErrPeerAuth) || !strings.Contains(err.Error(), "clock") {
		t.Fatalf("skewed clock: %v", err)
	}
	if n := a.applier.count(); n != 1 {
		t.Fatalf("the applier ran %d times, want 1", n)
	}

	// Without a key nothing is sent.
	var hits atomic.Int32
	counter := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer counter.Close()
	if _, err := (&PeerClient{Name: "ctl2", BaseURL: counter.URL}).Incidents(context.Background()); !errors.Is(err, ErrPeerAuth) || hits.Load() != 0 {
		t.Fatalf("keyless client: %v, %d requests sent", err, hits.Load())
	}

	// An answer someone else made up is refused: here a forged verdict
	// that would let this node act.
	forged := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(headerSignature, strings.Repeat("00", 32))
		_ = json.NewEncoder(w).Encode(splitbrain.NodeEvidence{Node: "ctl2", Reachable: true})
	}))
	defer forged.Close()
	fc := &PeerClient{Name: "ctl2", BaseURL: forged.URL, Key: testKey}
	if _, err := fc.Evidence(context.Background(), "r0"); !errors.Is(err, ErrPeerAuth) {
		t.Fatalf("forged answer accepted: %v", err)
	}
}

func TestLoadPeerKey(t *testing.T) {
	dir := t.TempDir()
	secret := bytes.Repeat([]byte{0x5a, 0xc3, 0x01, 0xfe}, 64)
	write := func(name string, b []byte, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("authkey", secret, 0o400)
	k1, err := LoadPeerKey(good)
	if err != nil {
		t.Fatal(err)
	}
	k2, _ := DerivePeerKey(secret)
	if len(k1) != 32 || !bytes.Equal(k1, k2) || bytes.Contains(secret, k1) {
		t.Fatalf("derived key %x: want 32 bytes, the same on both nodes, not part of the secret", k1)
	}
	for _, tc := range []struct {
		path string
		want string
	}{
		{filepath.Join(dir, "missing"), "no such file or directory (the watchdogs sign peer requests with a key derived from the corosync authkey that haconf bootstrap installs; watchdog.peer_key_file names another file)"},
		{write("exposed", secret, 0o644), "readable by group or others (chmod 400"},
		{write("short", secret[:16], 0o400), "holds 16 bytes, want at least 32"},
		{dir, "is not a regular file"},
	} {
		_, err := LoadPeerKey(tc.path)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.path) {
			t.Errorf("LoadPeerKey(%s) = %v, want an error naming the file and %q", tc.path, err, tc.want)
		}
		if err != nil && (strings.Contains(err.Error(), string(secret[:16])) || strings.Contains(err.Error(), hex.EncodeToString(secret[:16]))) {
			t.Errorf("error shows the secret: %v", err)
		}
	}
}

func TestLoadToken(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	const token = "0f3c9a7e5b1d2468ace0"
	got, err := LoadToken(write("token", token+"\n", 0o600))
	if err != nil || string(got) != token {
		t.Fatalf("LoadToken = %q, %v; want the file's token without its newline", got, err)
	}
	for _, tc := range []struct{ path, want string }{
		{filepath.Join(dir, "missing"), "no such file or directory"},
		{write("exposed", token, 0o640), "readable by group or others (chmod 600"},
		{write("short", "abc\n", 0o600), "at least 16 printable characters"},
		{write("empty", "", 0o600), "at least 16 printable characters"},
		{write("two", token+" "+token, 0o600), "without spaces"},
		{dir, "is not a regular file"},
	} {
		_, err := LoadToken(tc.path)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.path) {
			t.Errorf("LoadToken(%s) = %v, want an error naming the file and %q", tc.path, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), token) {
			t.Errorf("error shows the token: %v", err)
		}
	}
}
