package watchdog

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/haconf/haconf/drbd"
)

// LocalNode is what the endpoint serves about this controller.
type LocalNode interface {
	NodeName() string
	Evidence(ctx context.Context, resource string) (drbd.NodeEvidence, error)
	State(ctx context.Context, resource string) (drbd.Resource, error)
}

// PeerApplier runs this node's half of a peer's decision after verifying
// it (drbd.Engine.ApplyForPeer).
type PeerApplier interface {
	ApplyForPeer(ctx context.Context, req drbd.PeerRequest) (drbd.PeerResult, error)
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
	Incidents  *drbd.IncidentStore
	// ApplyFrom lists the addresses allowed to ask this node to run its
	// half of a split-brain decision (the peer's management and storage
	// addresses). Nobody else may, even with a valid signature.
	ApplyFrom []netip.Addr
	// Key authenticates the peer API (LoadPeerKey): every /v1/ request
	// must be signed with it and every answer is. Without a key the /v1/
	// routes refuse everything. /healthz, /status and /metrics stay open:
	// they show state and counts, nothing secret, and change nothing.
	Key []byte
	Log *slog.Logger
	// now is the clock requests are checked against (tests).
	now func() time.Time
}

func (s *Server) log() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.New(slog.DiscardHandler)
}

// Handler returns the endpoint's routes.
func (s *Server) Handler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(&collector{s: s})
	now := s.now
	if now == nil {
		now = time.Now
	}
	auth := &peerAuth{key: s.Key, node: s.Node.NodeName(), log: s.log(), now: now}
	peer := http.NewServeMux()
	mux := http.NewServeMux()
	mux.Handle("/v1/", auth.wrap(peer))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /status", s.status)
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
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
			list = []drbd.Incident{}
		}
		s.reply(w, list, err, nil)
	})
	return mux
}

// Status is the /status document.
type Status struct {
	Node        string            `json:"node"`
	Checks      []CheckState      `json:"checks"`
	DRBD        drbd.Status       `json:"drbd"`
	DRBDUpdated time.Time         `json:"drbd_updated,omitzero"`
	SplitBrain  bool              `json:"split_brain"`
	Decision    *drbd.Plan        `json:"split_brain_plan,omitempty"`
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
func Summarize(list []drbd.Incident) []IncidentSummary {
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
	st := Status{Node: s.Node.NodeName(), Checks: s.Watchdog.States()}
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

func (s *Server) apply(w http.ResponseWriter, r *http.Request) {
	if !s.allowed(r.RemoteAddr) {
		s.log().Warn("peer request rejected", "remote", r.RemoteAddr, "method", r.Method, "path", r.URL.Path, "reason", "source address not allowed")
		writeError(w, http.StatusForbidden, "only the peer controller may ask this node to apply a split-brain decision")
		return
	}
	var req drbd.PeerRequest
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

func (s *Server) reply(w http.ResponseWriter, v any, err error, partial *drbd.PeerResult) {
	w.Header().Set("Content-Type", "application/json")
	if err != nil {
		code := http.StatusInternalServerError
		switch {
		case errors.Is(err, drbd.ErrUnknownResource):
			code = http.StatusNotFound
		case errors.Is(err, drbd.ErrDisagree):
			code = http.StatusConflict
		}
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(apiError{Error: err.Error(), Kind: kindOf(err), Result: partial})
		return
	}
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(apiError{Error: msg})
}

// collector exposes the watchdog's view at scrape time.
type collector struct{ s *Server }

var (
	descCheckFailing = prometheus.NewDesc("haconf_watchdog_check_failing", "1 when the check failed N times in a row and is not cleared yet.", []string{"check"}, nil)
	descCheckFails   = prometheus.NewDesc("haconf_watchdog_check_consecutive_failures", "Consecutive failed runs of the check.", []string{"check"}, nil)
	descRemediations = prometheus.NewDesc("haconf_watchdog_remediations_total", "Remediations started for the check.", []string{"check"}, nil)
	descDRBDInfo     = prometheus.NewDesc("haconf_drbd_info", "DRBD state of a volume (always 1).", []string{"resource", "volume", "role", "disk", "connection", "replication", "peer_role", "peer_disk"}, nil)
	descDRBDHealthy  = prometheus.NewDesc("haconf_drbd_healthy", "1 when Connected and UpToDate/UpToDate.", []string{"resource", "volume"}, nil)
	descDRBDOOS      = prometheus.NewDesc("haconf_drbd_out_of_sync_bytes", "Bytes this node's bitmap marks out of sync.", []string{"resource", "volume"}, nil)
	descDRBDSync     = prometheus.NewDesc("haconf_drbd_sync_percent", "Progress of a running resync.", []string{"resource", "volume"}, nil)
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
				ch <- prometheus.MustNewConstMetric(descDRBDSync, prometheus.GaugeValue, r.Sync.Percent, r.Name, vol)
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
		for _, res := range []string{drbd.ResultDetected, drbd.ResultReported, drbd.ResultRefused, drbd.ResultResolved, drbd.ResultFailed} {
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
