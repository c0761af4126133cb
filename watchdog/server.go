package watchdog

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/haconf/haconf/drbd"
	"github.com/haconf/haconf/splitbrain"
)

// LocalNode is what the endpoint serves about this controller.
type LocalNode interface {
	NodeName() string
	Evidence(ctx context.Context, resource string) (splitbrain.NodeEvidence, error)
	State(ctx context.Context, resource string) (drbd.Resource, error)
}

// PeerApplier runs this node's half of a peer's decision after verifying
// it (splitbrain.Engine.ApplyForPeer).
type PeerApplier interface {
	ApplyForPeer(ctx context.Context, req splitbrain.PeerRequest) (splitbrain.PeerResult, error)
}

// DRBDState holds the latest DRBD state seen by the watcher.
type DRBDState struct {
	mu      sync.Mutex
	status  drbd.Status
	updated time.Time
}

// Set records st (the watcher's callback).
func (s *DRBDState) Set(st drbd.Status) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status, s.updated = st, time.Now()
}

// Get returns the latest state and when it was seen.
func (s *DRBDState) Get() (drbd.Status, time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.status, s.updated
}

// Server is the watchdog's HTTP endpoint.
type Server struct {
	Watchdog   *Watchdog
	Node       LocalNode
	Applier    PeerApplier
	SplitBrain *SplitBrainCheck
	DRBD       *DRBDState
	Incidents  *splitbrain.IncidentStore
	// ApplyFrom lists the addresses allowed to ask this node to run its
	// half of a split-brain decision (the peer's management and storage
	// addresses). Nobody else may, even with a valid signature.
	ApplyFrom []netip.Addr
	// Key authenticates the peer API (LoadPeerKey): every /v1/ request
	// must be signed with it and every answer is. Without a key the /v1/
	// routes refuse everything.
	Key []byte
	// Token, when set (LoadToken), is the bearer token /status and
	// /metrics require. They show state and counts and change nothing,
	// so by default they are open, on the cluster networks only. /healthz
	// stays open whatever is set: it says "ok" and nothing else.
	Token []byte
	Log   *slog.Logger
	// Build names the running binary in haconf_build_info.
	Build BuildInfo
	// Extra collectors for /metrics (compute failover's, on the node where
	// its controller runs; the backup jobs').
	Extra []prometheus.Collector
	// now is the clock requests are checked against (tests).
	now func() time.Time
	// limits replaces defaultLimits (tests).
	limits *limits
}

// limits bound what one connection may cost the endpoint.
type limits struct {
	readHeader, read, write, idle time.Duration
	maxHeaderBytes                int
}

// defaultLimits are the endpoint's connection limits.
//
//   - Headers within 5 s and the whole request (headers and a body of at
//     most maxPeerBody) within 10 s: a client that trickles its request
//     is cut off instead of holding a connection.
//   - The answer within 60 s of the request: the evidence call, the
//     slowest read, is given up by the peer after 25 s (pairEnv in
//     cmd/haconf), and the split-brain check after 60 s. The apply call
//     (a preserved copy can take minutes) lifts its own write deadline:
//     its bound is the asking peer's context.
//   - Idle keep-alive connections closed after 2 min (Prometheus scrapes
//     and the peer's checks come far more often).
//   - 16 KiB of headers: a peer request has four short ones, a scrape a
//     few more.
var defaultLimits = limits{readHeader: 5 * time.Second, read: 10 * time.Second, write: time.Minute, idle: 2 * time.Minute, maxHeaderBytes: 16 << 10}

// HTTPServer returns an http.Server that serves Handler within the
// endpoint's connection limits.
func (s *Server) HTTPServer() *http.Server {
	l := defaultLimits
	if s.limits != nil {
		l = *s.limits
	}
	return &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: l.readHeader,
		ReadTimeout:       l.read,
		WriteTimeout:      l.write,
		IdleTimeout:       l.idle,
		MaxHeaderBytes:    l.maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log().Handler(), slog.LevelWarn),
	}
}

// BuildInfo is the version and commit make stamps into haconf
// (main.version, main.commit).
type BuildInfo struct {
	Version, Commit string
}

func (s *Server) log() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.New(slog.DiscardHandler)
}

// Handler returns the endpoint's routes.
func (s *Server) Handler() http.Handler {
	reg := s.registry()
	now := s.now
	if now == nil {
		now = time.Now
	}
	auth := newPeerAuth(s.Key, s.Node.NodeName(), s.log(), now)
	peer := http.NewServeMux()
	mux := http.NewServeMux()
	mux.Handle("/v1/", auth.wrap(peer))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.Handle("GET /status", s.requireToken(http.HandlerFunc(s.status)))
	mux.Handle("GET /metrics", s.requireToken(promhttp.HandlerFor(reg, promhttp.HandlerOpts{})))
	peer.HandleFunc("GET /v1/drbd/evidence", func(w http.ResponseWriter, r *http.Request) {
		ev, err := s.Node.Evidence(r.Context(), r.URL.Query().Get("resource"))
		s.reply(w, ev, err, nil)
	})
	peer.HandleFunc("GET /v1/drbd/state", func(w http.ResponseWriter, r *http.Request) {
		st, err := s.Node.State(r.Context(), r.URL.Query().Get("resource"))
		s.reply(w, st, err, nil)
	})
	peer.HandleFunc("POST /v1/splitbrain/apply", s.apply)
	peer.HandleFunc("GET /v1/incidents", func(w http.ResponseWriter, r *http.Request) {
		list, err := s.Incidents.List()
		if list == nil {
			list = []splitbrain.Incident{}
		}
		s.reply(w, list, err, nil)
	})
	return mux
}

// registry holds what /metrics exports: the watchdog's view (collector),
// the build, the Go runtime and the process (go_*, process_*), and Extra.
func (s *Server) registry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	build := prometheus.NewGauge(prometheus.GaugeOpts{Name: "haconf_build_info", Help: "The running haconf's version, commit and Go version (always 1).",
		ConstLabels: prometheus.Labels{"version": s.Build.Version, "commit": s.Build.Commit, "goversion": runtime.Version()}})
	build.Set(1)
	reg.MustRegister(&collector{s: s}, build, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(s.Extra...)
	return reg
}

// StatusSchema names the /status document and its version, as every
// JSON output of haconf does (internal/cli.WriteJSON).
const StatusSchema = "haconf.watchdog.status/v1"

// Status is the /status document.
type Status struct {
	Schema      string            `json:"schema"` // StatusSchema
	Node        string            `json:"node"`
	Checks      []CheckState      `json:"checks"`
	DRBD        drbd.Status       `json:"drbd"`
	DRBDUpdated time.Time         `json:"drbd_updated,omitzero"`
	SplitBrain  bool              `json:"split_brain"`
	Decision    *splitbrain.Plan  `json:"split_brain_plan,omitempty"`
	Incidents   []IncidentSummary `json:"incidents"`
}

// IncidentSummary names what an incident did.
type IncidentSummary struct {
	ID        string `json:"id"`
	Node      string `json:"node"`
	Role      string `json:"role"`
	Result    string `json:"result"`
	Victim    string `json:"victim,omitempty"`
	Preserved string `json:"preserved,omitempty"`
}

// Summarize shortens incidents for listings.
func Summarize(list []splitbrain.Incident) []IncidentSummary {
	out := []IncidentSummary{}
	for _, inc := range list {
		s := IncidentSummary{ID: inc.ID, Node: inc.Node, Role: inc.Role, Result: inc.Result, Victim: inc.Victim}
		if inc.Preserved != nil {
			s.Preserved = inc.Preserved.Path
		}
		out = append(out, s)
	}
	return out
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	st := Status{Schema: StatusSchema, Node: s.Node.NodeName(), Checks: s.Watchdog.States()}
	if s.DRBD != nil {
		st.DRBD, st.DRBDUpdated = s.DRBD.Get()
	}
	if s.SplitBrain != nil {
		st.SplitBrain, st.Decision = s.SplitBrain.Active(), s.SplitBrain.LastPlan()
	}
	if s.Incidents != nil {
		list, _ := s.Incidents.List()
		st.Incidents = Summarize(list)
	}
	s.reply(w, st, nil, nil)
}

// requireToken lets a request through to h only with the bearer token,
// when the server has one. The digests are compared, in constant time, so
// neither the token's bytes nor its length show in the time taken.
func (s *Server) requireToken(h http.Handler) http.Handler {
	if len(s.Token) == 0 {
		return h
	}
	want := sha256.Sum256(s.Token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		got := sha256.Sum256([]byte(strings.TrimSpace(token)))
		if !strings.EqualFold(scheme, "Bearer") || subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			s.log().Warn("request without the bearer token rejected", "remote", r.RemoteAddr, "path", r.URL.Path)
			w.Header().Set("WWW-Authenticate", `Bearer realm="haconf watchdog"`)
			writeError(w, http.StatusUnauthorized, "this endpoint needs the bearer token of watchdog.token_file")
			return
		}
		h.ServeHTTP(w, r)
	})
}

func (s *Server) apply(w http.ResponseWriter, r *http.Request) {
	if !s.allowed(r.RemoteAddr) {
		s.log().Warn("peer request rejected", "remote", r.RemoteAddr, "method", r.Method, "path", r.URL.Path, "reason", "source address not allowed")
		writeError(w, http.StatusForbidden, "only the peer controller may ask this node to apply a split-brain decision")
		return
	}
	// Preserving the victim's data can take longer than the endpoint's
	// write timeout; the asking peer's context bounds this call.
	_ = http.NewResponseController(w).SetWriteDeadline(time.Time{})
	var req splitbrain.PeerRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		s.reply(w, nil, err, nil)
		return
	}
	s.log().Warn("peer asks this node to apply a split-brain decision", "from", req.From, "id", req.ID, "action", req.Decision.Action, "victim", req.Decision.Victim)
	res, err := s.Applier.ApplyForPeer(r.Context(), req)
	s.reply(w, res, err, &res)
}

func (s *Server) allowed(remote string) bool {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		return false
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	for _, ok := range s.ApplyFrom {
		if ok == a.Unmap() {
			return true
		}
	}
	return false
}

func (s *Server) reply(w http.ResponseWriter, v any, err error, partial *splitbrain.PeerResult) {
	w.Header().Set("Content-Type", "application/json")
	if err != nil {
		code := http.StatusInternalServerError
		switch {
		case errors.Is(err, drbd.ErrUnknownResource):
			code = http.StatusNotFound
		case errors.Is(err, splitbrain.ErrDisagree):
			code = http.StatusConflict
		}
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(apiError{Error: err.Error(), Kind: kindOf(err), Result: partial})
		return
	}
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeRefusal(w, code, apiError{Error: msg})
}

func writeRefusal(w http.ResponseWriter, code int, e apiError) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(e)
}

// collector exposes the watchdog's view at scrape time.
type collector struct{ s *Server }

var (
	descCheckFailing = prometheus.NewDesc("haconf_watchdog_check_failing", "1 when the check failed N times in a row and is not cleared yet.", []string{"check"}, nil)
	descCheckFails   = prometheus.NewDesc("haconf_watchdog_check_consecutive_failures", "Consecutive failed runs of the check.", []string{"check"}, nil)
	descRemediations = prometheus.NewDesc("haconf_watchdog_remediations_total", "Remediations started for the check (not counting dry runs).", []string{"check"}, nil)
	descDryRuns      = prometheus.NewDesc("haconf_watchdog_dry_run_remediations_total", "Remediations of the check only planned and logged (haconf watchdog --dry-run).", []string{"check"}, nil)
	descDRBDInfo     = prometheus.NewDesc("haconf_drbd_info", "DRBD state of a volume (always 1).", []string{"resource", "volume", "role", "disk", "connection", "replication", "peer_role", "peer_disk"}, nil)
	descDRBDHealthy  = prometheus.NewDesc("haconf_drbd_healthy", "1 when Connected and UpToDate/UpToDate.", []string{"resource", "volume"}, nil)
	descDRBDOOS      = prometheus.NewDesc("haconf_drbd_out_of_sync_bytes", "Bytes this node's bitmap marks out of sync.", []string{"resource", "volume"}, nil)
	descDRBDSync     = prometheus.NewDesc("haconf_drbd_sync_ratio", "Progress of a running resync, from 0 to 1.", []string{"resource", "volume"}, nil)
	descSplitBrain   = prometheus.NewDesc("haconf_drbd_split_brain", "1 while the resource is in split brain.", []string{"resource"}, nil)
	descIncidents    = prometheus.NewDesc("haconf_splitbrain_incidents", "Split-brain incident records on this node by result.", []string{"result"}, nil)
)

func (c *collector) Describe(ch chan<- *prometheus.Desc) { prometheus.DescribeByCollect(c, ch) }

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	s := c.s
	for _, st := range s.Watchdog.States() {
		ch <- prometheus.MustNewConstMetric(descCheckFailing, prometheus.GaugeValue, b2f(st.Failing), st.Name)
		ch <- prometheus.MustNewConstMetric(descCheckFails, prometheus.GaugeValue, float64(st.ConsecutiveFailures), st.Name)
		ch <- prometheus.MustNewConstMetric(descRemediations, prometheus.CounterValue, float64(st.Remediations), st.Name)
		ch <- prometheus.MustNewConstMetric(descDryRuns, prometheus.CounterValue, float64(st.DryRunRemediations), st.Name)
	}
	if s.DRBD != nil {
		st, _ := s.DRBD.Get()
		for _, r := range st.Resources {
			if r.Name == "" {
				continue
			}
			vol := itoa(r.Volume)
			ch <- prometheus.MustNewConstMetric(descDRBDInfo, prometheus.GaugeValue, 1, r.Name, vol, r.Role, r.Disk, r.Connection, r.Replication, r.PeerRole, r.PeerDisk)
			ch <- prometheus.MustNewConstMetric(descDRBDHealthy, prometheus.GaugeValue, b2f(r.Healthy()), r.Name, vol)
			ch <- prometheus.MustNewConstMetric(descDRBDOOS, prometheus.GaugeValue, float64(r.OutOfSyncKiB*1024), r.Name, vol)
			if r.Sync != nil {
				ch <- prometheus.MustNewConstMetric(descDRBDSync, prometheus.GaugeValue, r.Sync.Percent/100, r.Name, vol)
			}
		}
	}
	if s.SplitBrain != nil {
		ch <- prometheus.MustNewConstMetric(descSplitBrain, prometheus.GaugeValue, b2f(s.SplitBrain.Active()), s.SplitBrain.Resource)
	}
	if s.Incidents != nil {
		list, _ := s.Incidents.List()
		counts := map[string]int{}
		for _, inc := range list {
			counts[inc.Result]++
		}
		for _, res := range []string{splitbrain.ResultDetected, splitbrain.ResultReported, splitbrain.ResultRefused, splitbrain.ResultResolved, splitbrain.ResultFailed} {
			ch <- prometheus.MustNewConstMetric(descIncidents, prometheus.GaugeValue, float64(counts[res]), res)
		}
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}
