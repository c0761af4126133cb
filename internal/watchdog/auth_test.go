package watchdog

import (
	"bytes"
	"cmp"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
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
)

// countingApplier records every decision that reached it.
type countingApplier struct {
	mu    sync.Mutex
	calls []drbd.PeerRequest
}

func (a *countingApplier) ApplyForPeer(ctx context.Context, req drbd.PeerRequest) (drbd.PeerResult, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.calls = append(a.calls, req)
	return drbd.PeerResult{Node: "ctl2"}, nil
}

func (a *countingApplier) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.calls)
}

// syncBuffer is a log sink the server's goroutines can share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var authNow = time.Date(2026, 5, 7, 12, 0, 0, 0, time.UTC)

type authServer struct {
	ts      *httptest.Server
	applier *countingApplier
	log     *syncBuffer
}

func newAuthServer(t *testing.T, key []byte, allow string) *authServer {
	t.Helper()
	a := &authServer{applier: &countingApplier{}, log: &syncBuffer{}}
	s := &Server{Watchdog: &Watchdog{}, Node: stubNode{"ctl2"}, Applier: a.applier, Incidents: &drbd.IncidentStore{Dir: t.TempDir()},
		ApplyFrom: []netip.Addr{netip.MustParseAddr(allow)}, Key: key,
		Log: slog.New(slog.NewTextHandler(a.log, nil)), now: func() time.Time { return authNow }}
	a.ts = httptest.NewServer(s.Handler())
	t.Cleanup(a.ts.Close)
	return a
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
	body, _ := json.Marshal(drbd.PeerRequest{ID: "i1", Resource: "r0", From: "ctl1", Decision: drbd.Decision{Action: drbd.ActionResolve, Victim: "ctl2"}})
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
	if _, err := pc.Apply(context.Background(), drbd.PeerRequest{ID: "i1", Resource: "r0"}); err != nil {
		t.Fatalf("signed apply: %v", err)
	}
	if _, err := pc.Evidence(context.Background(), "r0"); err != nil {
		t.Fatalf("signed evidence: %v", err)
	}

	wrong := &PeerClient{Name: "ctl2", BaseURL: a.ts.URL, Key: mustDerive(bytes.Repeat([]byte("x"), 64)), now: pc.now}
	_, err := wrong.Apply(context.Background(), drbd.PeerRequest{ID: "i2", Resource: "r0"})
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
		_ = json.NewEncoder(w).Encode(drbd.NodeEvidence{Node: "ctl2", Reachable: true})
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
