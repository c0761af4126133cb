package compute

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/haconf/haconf/compute/gossip"
	"github.com/haconf/haconf/compute/nova"
	"github.com/haconf/haconf/internal/testenv"
)

// openDB is a pool on srv, as the caller of SQLStore builds one: a
// process of its own (controller, haconf compute maintenance) has its own.
func openDB(t *testing.T, srv testenv.MariaDBServer) *sql.DB {
	t.Helper()
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr = srv.User, srv.Password, "unix", srv.Socket
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(conn)
	t.Cleanup(func() { db.Close() })
	return db
}

// sameJSON fails t unless got and want encode alike (times compared as
// the store keeps them).
func sameJSON(t *testing.T, what string, got, want any) {
	t.Helper()
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if string(g) != string(w) {
		t.Errorf("%s:\n got %s\nwant %s", what, g, w)
	}
}

// waitFor polls s (10 s at most) until its only incident satisfies ok.
func waitFor(t *testing.T, s Store, what string, ok func(*Incident) bool) *Incident {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ins, err := s.Incidents(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(ins) == 1 && ok(ins[0]) {
			return ins[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited 10 s for %s: %v", what, summaries(ins))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func binlogPos(t *testing.T, db *sql.DB) int64 {
	t.Helper()
	var file string
	var pos int64
	var doDB, ignoreDB sql.NullString
	if err := db.QueryRow("SHOW MASTER STATUS").Scan(&file, &pos, &doDB, &ignoreDB); err != nil {
		t.Fatal(err)
	}
	return pos
}

// bytesReceived is what the server received from every client so far.
func bytesReceived(t *testing.T, db *sql.DB) int64 {
	t.Helper()
	var name string
	var n int64
	if err := db.QueryRow("SHOW GLOBAL STATUS LIKE 'Bytes_received'").Scan(&name, &n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestSQLStore runs the store, and two controllers one after the other on
// it, against a real MariaDB (one server, a database per subtest), with
// the binary log on as on the pair.
func TestSQLStore(t *testing.T) {
	binlog := filepath.Join(t.TempDir(), "binlog")
	srv := testenv.StartMariaDB(t, "--log-bin="+binlog, "--server-id=1", "--binlog-format=ROW")
	ctx := context.Background()
	t0 := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)

	t.Run("schema created on an empty server, found by a second store", func(t *testing.T) {
		db := openDB(t, srv)
		var n int
		if err := db.QueryRow("SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'haconf'").Scan(&n); err != nil || n != 0 {
			t.Fatalf("haconf database before the first use: %d %v", n, err)
		}
		first := &SQLStore{DB: db}
		if ins, err := first.Incidents(ctx); err != nil || len(ins) != 0 {
			t.Fatalf("incidents of an empty store: %v %v", ins, err)
		}
		rows, err := db.Query("SELECT TABLE_NAME, ENGINE, TABLE_COLLATION FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'haconf' ORDER BY TABLE_NAME")
		if err != nil {
			t.Fatal(err)
		}
		var tables []string
		for rows.Next() {
			var name, engine, collation string
			if err := rows.Scan(&name, &engine, &collation); err != nil {
				t.Fatal(err)
			}
			tables = append(tables, name)
			if engine != "InnoDB" || !strings.HasPrefix(collation, "utf8mb4_") {
				t.Errorf("table %s: engine %s, collation %s", name, engine, collation)
			}
		}
		rows.Close()
		if want := []string{"compute_controller", "compute_holds", "compute_incidents", "compute_status"}; !slices.Equal(tables, want) {
			t.Fatalf("tables %v, want %v", tables, want)
		}
		in := &Incident{ID: "cmp1-20261206T100000", Host: "cmp1", State: StateFencing, Opened: t0, Updated: t0}
		if err := first.Save(ctx, in); err != nil {
			t.Fatal(err)
		}
		if err := first.UpdateHolds(ctx, func(h *Holds) { h.Resumed = t0 }); err != nil {
			t.Fatal(err)
		}

		// Another process (the other controller node) with a store of its
		// own finds the schema: it writes nothing to find it.
		second := &SQLStore{DB: openDB(t, srv)}
		before := binlogPos(t, second.DB)
		ins, err := second.Incidents(ctx)
		if err != nil || len(ins) != 1 || ins[0].ID != in.ID {
			t.Fatalf("second store's incidents: %v %v", ins, err)
		}
		if after := binlogPos(t, second.DB); after != before {
			t.Errorf("a second store's first read wrote %d bytes to the binary log", after-before)
		}
		if h, err := second.Holds(ctx); err != nil || !h.Resumed.Equal(t0) {
			t.Fatalf("second store's holds: %+v %v", h, err)
		}
	})

	t.Run("incidents round trip, oldest first", func(t *testing.T) {
		s := &SQLStore{DB: openDB(t, srv), Database: "haconf_incidents"}
		opened := []time.Duration{2 * time.Hour, 0, time.Hour} // saved out of order
		var want []*Incident
		for i, d := range opened {
			in := &Incident{ID: fmt.Sprintf("cmp%d-x", i+1), Host: fmt.Sprintf("cmp%d", i+1), Domain: DefaultDomain, State: StateFencing,
				FailedAt: t0.Add(d - 7*time.Second), Opened: t0.Add(d)}
			in.Record(t0.Add(d), "detected", 7*time.Second, nil, "dead on both networks")
			if err := s.Save(ctx, in); err != nil {
				t.Fatal(err)
			}
			want = append(want, in)
		}
		// An update: the instances and a step, saved over the first version.
		up := want[1].clone()
		up.State, up.ServiceID = StateEvacuating, "svc-2"
		up.Instances = []Instance{
			{ID: "a", Name: "vm-a", WasStatus: "ACTIVE", State: EvacRunning, Target: "cmp3", Attempts: 1, Started: t0.Add(time.Minute), Tried: []string{"cmp4"}},
			{ID: "b", Name: "vm-ü", WasStatus: "SHUTOFF", State: EvacSkipped, Error: "not evacuable by evacuate.policy tagged"},
		}
		up.Record(t0.Add(time.Minute), "fence", 3*time.Second, errors.New("first attempt: timeout"), "")
		if err := s.Save(ctx, up); err != nil {
			t.Fatal(err)
		}
		want[1] = up
		got, err := s.Incidents(ctx)
		if err != nil {
			t.Fatal(err)
		}
		sameJSON(t, "incidents", got, []*Incident{want[1], want[2], want[0]})
		var state string
		if err := s.DB.QueryRow("SELECT state FROM haconf_incidents.compute_incidents WHERE id = 'cmp2-x'").Scan(&state); err != nil || state != string(StateEvacuating) {
			t.Errorf("state column %q %v, want evacuating", state, err)
		}
	})

	t.Run("two processes update the holds at once", func(t *testing.T) {
		a := &SQLStore{DB: openDB(t, srv), Database: "haconf_holds"}
		b := &SQLStore{DB: openDB(t, srv), Database: "haconf_holds"}
		var wg sync.WaitGroup
		errs := make(chan error, 40)
		for i, s := range []*SQLStore{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := range 20 {
					host := fmt.Sprintf("cmp%d-%d", i, j)
					errs <- s.UpdateHolds(ctx, func(h *Holds) {
						// A slow operator: the other update waits for the row.
						time.Sleep(2 * time.Millisecond)
						if h.Maintenance == nil {
							h.Maintenance = map[string]Maintenance{}
						}
						h.Maintenance[host] = Maintenance{Until: t0, Reason: host}
					})
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		h, err := a.Holds(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(h.Maintenance) != 40 {
			t.Fatalf("%d holds kept of 40: %v", len(h.Maintenance), slices.Sorted(maps.Keys(h.Maintenance)))
		}
	})

	t.Run("status round trip", func(t *testing.T) {
		s := &SQLStore{DB: openDB(t, srv), Database: "haconf_status"}
		if _, err := s.Status(ctx); !errors.Is(err, ErrNoStatus) {
			t.Fatalf("status before any controller: %v, want ErrNoStatus", err)
		}
		in := &Incident{ID: "cmp2-x", Host: "cmp2", State: StateDone, Opened: t0, Updated: t0, Closed: t0.Add(time.Minute)}
		if err := s.Save(ctx, in); err != nil {
			t.Fatal(err)
		}
		up := LinkView{Seen: true, Alive: true, Since: t0}
		st := Status{At: t0.Add(time.Hour + 1234*time.Microsecond), Started: t0, Controller: "ctl1", Resumed: t0.Add(-time.Hour),
			NovaError: "keystone: connection refused",
			Hosts: []HostStatus{
				{Name: "cmp1", Domain: "rack1", Condition: Healthy, Detail: "alive on both networks", NovaCompute: true,
					Links:   map[gossip.Link]LinkView{gossip.Management: up, gossip.Storage: up},
					Service: &nova.Service{ID: "svc-1", Host: "cmp1", Status: "enabled", State: "up", UpdatedAt: t0}},
				{Name: "cmp2", Domain: "rack1", Condition: Failed, Detail: "dead on both networks", Maintenance: "until tomorrow BIOS",
					Links: map[gossip.Link]LinkView{gossip.Management: {Seen: true, Since: t0}, gossip.Storage: {Seen: true, Since: t0}}},
			},
			Incidents: []*Incident{{ID: "not-stored"}}, // the store reads the incidents from their table
		}
		if err := s.SaveStatus(ctx, st); err != nil {
			t.Fatal(err)
		}
		got, err := s.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := st
		want.Incidents = []*Incident{in}
		sameJSON(t, "status", got, want)

		// The next round, nothing changed but the time: the binary log
		// gets the controller's small row, not the status again.
		var updated string
		s.DB.QueryRow("SELECT updated FROM haconf_status.compute_status").Scan(&updated)
		before := binlogPos(t, s.DB)
		received := bytesReceived(t, s.DB)
		st.At = st.At.Add(time.Second)
		if err := s.SaveStatus(ctx, st); err != nil {
			t.Fatal(err)
		}
		doc, _ := json.Marshal(st)
		if sent := bytesReceived(t, s.DB) - received; sent >= int64(len(doc)) {
			t.Errorf("an unchanged status sent %d bytes to the server (the status is %d): it was sent again", sent, len(doc))
		}
		if grew := binlogPos(t, s.DB) - before; grew >= int64(len(doc)) {
			t.Errorf("an unchanged status grew the binary log by %d bytes (the status is %d)", grew, len(doc))
		}
		var again string
		s.DB.QueryRow("SELECT updated FROM haconf_status.compute_status").Scan(&again)
		if again != updated {
			t.Errorf("unchanged status rewritten: updated %s -> %s", updated, again)
		}
		if got, err := s.Status(ctx); err != nil || !got.At.Equal(st.At) {
			t.Fatalf("status after a heartbeat: at %v, want %v (%v)", got.At, st.At, err)
		}
	})

	t.Run("the controller on the other node resumes an evacuation", func(t *testing.T) {
		// Two stores with pools of their own: the controller on ctl1, then
		// the one Pacemaker starts on ctl2 when ctl1 fails.
		first := &SQLStore{DB: openDB(t, srv), Database: "haconf_failover"}
		second := &SQLStore{DB: openDB(t, srv), Database: "haconf_failover"}
		r := newRig(t, "cmp1", "cmp2", "cmp3")
		for _, id := range []string{"a", "b", "c"} {
			r.nova.boot(id, "cmp1", 1)
		}
		r.nova.stall = true
		r.ctl.Store, r.ctl.Tick, r.ctl.Poll = first, 50*time.Millisecond, 50*time.Millisecond
		r.start()
		r.crash("cmp1")
		waitFor(t, first, "every instance evacuating", func(in *Incident) bool {
			if len(in.Instances) != 3 {
				return false
			}
			for _, i := range in.Instances {
				if i.State != EvacRunning {
					return false
				}
			}
			return true
		})
		r.stop()

		r.nova.mu.Lock()
		r.nova.stall = false
		r.nova.mu.Unlock()
		r.ctl = &Controller{Config: r.cfg, Nova: r.nova, Fencer: r.fence, Store: second, Views: r.pools.views, Tick: 50 * time.Millisecond, Poll: 50 * time.Millisecond}
		r.start()
		in := waitFor(t, second, "the incident done", func(in *Incident) bool { return in.State == StateDone })
		r.stop()
		r.nova.mu.Lock()
		defer r.nova.mu.Unlock()
		if !maps.Equal(r.nova.evacuated, map[string]int{"a": 1, "b": 1, "c": 1}) || len(r.fence.off) != 1 {
			t.Fatalf("evacuations %v, fenced %v", r.nova.evacuated, r.fence.off)
		}
		for _, i := range in.Instances {
			if i.FinalHost == "" || i.FinalHost == "cmp1" {
				t.Errorf("instance %s: %+v", i.ID, i)
			}
		}
		if ins, err := second.Incidents(ctx); err != nil || len(ins) != 1 {
			t.Fatalf("incidents %v %v", summaries(ins), err)
		}
	})

	t.Run("errors name the operation", func(t *testing.T) {
		db := openDB(t, srv)
		db.Close()
		s := &SQLStore{DB: db, Database: "haconf_errors"}
		if err := s.Save(ctx, &Incident{ID: "cmp1-x"}); err == nil || !strings.Contains(err.Error(), "save incident cmp1-x") {
			t.Errorf("save on a closed pool: %v", err)
		}
		bad := &SQLStore{DB: openDB(t, srv), Database: "haconf-x; DROP"}
		if err := bad.UpdateHolds(ctx, func(*Holds) {}); err == nil || !strings.Contains(err.Error(), "update the holds") || !strings.Contains(err.Error(), "database name") {
			t.Errorf("bad database name: %v", err)
		}
	})
}
