package splitbrain_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/haconf/haconf/drbd"
	"github.com/haconf/haconf/splitbrain"
	"github.com/haconf/haconf/watchdog"
)

// memTransport delivers HTTP requests to a handler in memory, from a
// given source address, so the two watchdogs can talk inside a synctest
// bubble.
type memTransport struct {
	h    http.Handler
	from string
}

func (m memTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	r = r.Clone(r.Context())
	r.RemoteAddr = m.from + ":40000"
	m.h.ServeHTTP(rec, r)
	return rec.Result(), nil
}

// peerKey is the key both controllers derive from their shared corosync
// authkey.
var peerKey, _ = watchdog.DerivePeerKey([]byte(strings.Repeat("corosync authkey ", 16)))

type controller struct {
	node   *splitbrain.Node
	engine *splitbrain.Engine
	check  *watchdog.SplitBrainCheck
	wd     *watchdog.Watchdog
	srv    *watchdog.Server
}

// TestWatchdogsResolveTogether runs both controllers' watchdogs on a fake
// pair in split brain: exactly one acts, both agree on the victim, the
// survivor's writes are intact and the victim's are preserved.
func TestWatchdogsResolveTogether(t *testing.T) {
	for _, policy := range []string{drbd.PolicyAuto, drbd.PolicyManual} {
		t.Run(policy, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				w := splitbrain.NewFakeWorld("8.4.11", "ctl1", "ctl2")
				w.SplitBrain("ctl2", map[string][]int{"ctl1": {1, 2}, "ctl2": {3}})
				survivor, victim := w.Digest("ctl2"), w.Digest("ctl1")
				dir := t.TempDir()
				addr := map[string]string{"ctl1": "192.0.2.11", "ctl2": "192.0.2.12"}
				ctls := map[string]*controller{}
				for _, name := range []string{"ctl1", "ctl2"} {
					cfg := drbd.Config{Resource: "r0", Disk: "/dev/vg0/haconf", Device: "/dev/drbd0", SplitBrain: drbd.SplitBrainConfig{Policy: policy}}
					cfg.SetDefaults()
					cfg.SplitBrain.PreserveDir = filepath.Join(dir, name, "preserve")
					store := &splitbrain.IncidentStore{Dir: filepath.Join(dir, name, "incidents")}
					n := &splitbrain.Node{Node: drbd.Node{Name: name, Run: w.NodeFor(name), Config: cfg}, VIP: "192.0.2.10", Incidents: store}
					e := &splitbrain.Engine{Local: n, Policy: splitbrain.PolicyFrom(cfg.SplitBrain), Incidents: store, PollInterval: 100 * time.Millisecond}
					c := &watchdog.SplitBrainCheck{Engine: e, Local: n, Resource: "r0", Policy: e.Policy}
					wd := &watchdog.Watchdog{Specs: []watchdog.Spec{{Check: c, Interval: time.Second, FailuresBeforeAction: 2, SuccessesBeforeClear: 2, Cooldown: time.Minute}}}
					srv := &watchdog.Server{Watchdog: wd, Node: n, Applier: e, SplitBrain: c, Incidents: store, Key: peerKey}
					ctls[name] = &controller{n, e, c, wd, srv}
				}
				for name, c := range ctls {
					peer := "ctl1"
					if name == "ctl1" {
						peer = "ctl2"
					}
					c.srv.ApplyFrom = []netip.Addr{netip.MustParseAddr(addr[peer])}
					c.engine.Peer = &watchdog.PeerClient{Name: peer, BaseURL: "http://" + addr[peer] + ":9750",
						HTTP: &http.Client{Transport: memTransport{h: ctls[peer].srv.Handler(), from: addr[name]}}, Key: peerKey}
				}
				ctx, cancel := context.WithCancel(t.Context())
				for _, c := range ctls {
					go c.wd.Run(ctx)
				}
				time.Sleep(30 * time.Second)
				synctest.Wait()
				cancel()
				synctest.Wait()

				acts := 0
				for _, name := range []string{"ctl1", "ctl2"} {
					for _, m := range w.Mutations(name) {
						if strings.Contains(m, "--discard-my-data") {
							acts++
							if name != "ctl1" {
								t.Errorf("%s discarded its data, the victim is ctl1", name)
							}
						}
					}
				}
				list1, _ := ctls["ctl1"].engine.Incidents.List()
				list2, _ := ctls["ctl2"].engine.Incidents.List()
				if policy == drbd.PolicyManual {
					if acts != 0 || len(w.Mutations("ctl1"))+len(w.Mutations("ctl2")) != 0 {
						t.Fatalf("manual policy changed something: %v %v", w.Mutations("ctl1"), w.Mutations("ctl2"))
					}
					if w.Digest("ctl1") != victim || w.Digest("ctl2") != survivor {
						t.Fatal("manual policy changed data")
					}
					if len(list1) == 0 || len(list2) == 0 || list1[0].Result != splitbrain.ResultReported {
						t.Fatalf("manual policy must report on both nodes: %+v %+v", list1, list2)
					}
					return
				}
				if acts != 1 {
					t.Fatalf("discarded %d times, want exactly once", acts)
				}
				if !w.Healthy() || w.Digest("ctl1") != survivor || w.Digest("ctl2") != survivor {
					t.Fatal("pair not resynced from the survivor ctl2")
				}
				var preservedPath string
				for path, d := range w.Files("ctl1") {
					if d == victim {
						preservedPath = path
					}
				}
				if preservedPath == "" {
					t.Fatal("the victim's writes were not preserved")
				}
				if len(list2) != 1 || list2[0].Role != "actor" || list2[0].Result != splitbrain.ResultResolved || list2[0].Victim != "ctl1" || list2[0].Preserved.Path != preservedPath {
					t.Fatalf("survivor's incident: %+v", list2)
				}
				if len(list1) != 1 || list1[0].Role != "peer" || list1[0].Preserved.Path != preservedPath {
					t.Fatalf("victim's incident: %+v", list1)
				}
				for name, c := range ctls {
					if c.check.Active() {
						t.Errorf("%s still sees a split brain", name)
					}
				}
			})
		})
	}
}
