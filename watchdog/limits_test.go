package watchdog

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/haconf/haconf/splitbrain"
)

// serveLimited serves s through its HTTPServer with limits l instead of
// the defaults, so that a test waits milliseconds, not seconds.
func serveLimited(t *testing.T, s *Server, l limits) *httptest.Server {
	t.Helper()
	s.limits = &l
	ts := httptest.NewUnstartedServer(nil)
	ts.Config = s.HTTPServer()
	ts.Start()
	t.Cleanup(ts.Close)
	return ts
}

var allowLoopback = []netip.Addr{netip.MustParseAddr("127.0.0.1")}

var testLimits = limits{readHeader: 100 * time.Millisecond, read: 200 * time.Millisecond, write: 600 * time.Millisecond, idle: time.Second, maxHeaderBytes: 4 << 10}

// slowNode gathers its evidence in delay.
type slowNode struct {
	stubNode
	delay time.Duration
}

func (s slowNode) Evidence(ctx context.Context, r string) (splitbrain.NodeEvidence, error) {
	select {
	case <-time.After(s.delay):
	case <-ctx.Done():
		return splitbrain.NodeEvidence{}, ctx.Err()
	}
	return s.stubNode.Evidence(ctx, r)
}

// slowApplier applies a decision in delay.
type slowApplier struct{ delay time.Duration }

func (a slowApplier) ApplyForPeer(ctx context.Context, req splitbrain.PeerRequest) (splitbrain.PeerResult, error) {
	select {
	case <-time.After(a.delay):
	case <-ctx.Done():
		return splitbrain.PeerResult{}, ctx.Err()
	}
	return splitbrain.PeerResult{Node: "ctl2"}, nil
}

func TestDefaultLimits(t *testing.T) {
	l := defaultLimits
	if l.readHeader <= 0 || l.read < l.readHeader || l.idle <= 0 || l.maxHeaderBytes <= 0 {
		t.Fatalf("limits unset: %+v", l)
	}
	// The peer waits 25 s for evidence (cmd/haconf): the answer must be
	// allowed at least as long.
	if l.write <= 25*time.Second {
		t.Fatalf("write timeout %v cuts the evidence call short", l.write)
	}
	hs := (&Server{Watchdog: &Watchdog{}, Node: stubNode{"ctl2"}}).HTTPServer()
	if hs.ReadHeaderTimeout != l.readHeader || hs.ReadTimeout != l.read || hs.WriteTimeout != l.write || hs.IdleTimeout != l.idle || hs.MaxHeaderBytes != l.maxHeaderBytes {
		t.Fatalf("HTTPServer does not use the limits: %+v", hs)
	}
}

// trickle sends fast at once, then slow a byte every 10 ms, and returns
// what the server answered and how long until it closed the connection.
func trickle(t *testing.T, addr, fast, slow string) (string, time.Duration) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	if _, err := io.WriteString(conn, fast); err != nil {
		t.Fatal(err)
	}
	go func() {
		for i := range len(slow) {
			if _, err := conn.Write([]byte{slow[i]}); err != nil {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, _ := io.ReadAll(conn)
	return string(got), time.Since(start)
}

// A client that sends its request slowly is cut off after the header or
// the request timeout, long before it finished.
func TestSlowClientIsCutOff(t *testing.T) {
	s := &Server{Watchdog: &Watchdog{}, Node: stubNode{"ctl2"}, Key: testKey, now: func() time.Time { return authNow }}
	ts := serveLimited(t, s, testLimits)
	addr := ts.Listener.Addr().String()

	// 300 bytes at 10 ms each: 3 s to send.
	headers := "GET /healthz HTTP/1.1\r\nHost: ctl2\r\nX-Padding: " + strings.Repeat("a", 250) + "\r\n\r\n"
	got, took := trickle(t, addr, "", headers)
	if strings.Contains(got, "200 OK") || took > 2*time.Second {
		t.Fatalf("trickled headers: answered %q after %v; want the connection closed after about %v", got, took, testLimits.readHeader)
	}

	sg := validApply()
	sg.body = bytes.Repeat([]byte(" "), 300)
	var b strings.Builder
	b.WriteString("POST /v1/splitbrain/apply HTTP/1.1\r\nHost: ctl2\r\nContent-Length: 300\r\n")
	for k, v := range sg.headers() {
		b.WriteString(k + ": " + v[0] + "\r\n")
	}
	b.WriteString("\r\n")
	got, took = trickle(t, addr, b.String(), string(sg.body))
	if strings.Contains(got, "200 OK") || took > 2*time.Second {
		t.Fatalf("trickled body: answered %q after %v; want the request cut off after about %v", got, took, testLimits.read)
	}

	huge := "GET /healthz HTTP/1.1\r\nHost: ctl2\r\nX-Padding: " + strings.Repeat("a", 64<<10) + "\r\n\r\n"
	c2, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	go io.WriteString(c2, huge)
	_ = c2.SetReadDeadline(time.Now().Add(5 * time.Second))
	ans, _ := io.ReadAll(c2)
	if !strings.HasPrefix(string(ans), "HTTP/1.1 431") {
		t.Fatalf("64 KiB of headers: %q, want 431", ans)
	}
}

// The request timeouts bound reading the request, not the work: evidence
// gathered for longer than the read timeout (net/http lifts the read
// deadline once the request is read) and a decision applied for longer
// than the write timeout (the apply handler lifts its write deadline)
// still get their answers.
func TestSlowHandlersFinish(t *testing.T) {
	s := &Server{Watchdog: &Watchdog{}, Node: slowNode{stubNode{"ctl2"}, 2 * testLimits.read}, Applier: slowApplier{2 * testLimits.write},
		Incidents: &splitbrain.IncidentStore{Dir: t.TempDir()}, ApplyFrom: allowLoopback, Key: testKey}
	ts := serveLimited(t, s, testLimits)
	pc := &PeerClient{Name: "ctl2", BaseURL: ts.URL, Key: testKey, HTTP: &http.Client{}}
	if ev, err := pc.Evidence(context.Background(), "r0"); err != nil || ev.Node != "ctl2" {
		t.Fatalf("evidence slower than the read timeout: %+v %v", ev, err)
	}
	if res, err := pc.Apply(context.Background(), splitbrain.PeerRequest{ID: "i1", Resource: "r0", From: "ctl1"}); err != nil || res.Node != "ctl2" {
		t.Fatalf("apply slower than the write timeout: %+v %v", res, err)
	}
}
