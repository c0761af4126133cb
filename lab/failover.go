package lab

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"
)

// Phase is when the survivor first showed one step of the takeover,
// measured from the crash.
type Phase struct {
	Name  string        `json:"name"`
	After time.Duration `json:"after_ns"`
}

// FailoverResult is one measured failover.
type FailoverResult struct {
	Crashed  string `json:"crashed"`
	Survivor string `json:"survivor"`
	// Failover is from the crash until a write through the VIP succeeds again.
	Failover time.Duration `json:"failover_ns"`
	Phases   []Phase       `json:"phases"`
	// Committed rows (acknowledged before or after the crash) and how many
	// of them the survivor has: they must be equal.
	Committed int `json:"committed"`
	Found     int `json:"found"`
}

func (r FailoverResult) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "crashed %s; %s took over: a write through the VIP succeeded %.1fs after the crash\n", r.Crashed, r.Survivor, r.Failover.Seconds())
	for _, p := range r.Phases {
		fmt.Fprintf(&b, "  %-28s %5.1fs\n", p.Name, p.After.Seconds())
	}
	fmt.Fprintf(&b, "  committed rows: %d, present on %s: %d\n", r.Committed, r.Survivor, r.Found)
	return b.String()
}

func demoDB() (*sql.DB, error) {
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd = "lab", "lab"
	cfg.Net, cfg.Addr, cfg.DBName = "tcp", VIP.String()+":3306", "lab"
	cfg.Timeout, cfg.ReadTimeout, cfg.WriteTimeout = time.Second, 2*time.Second, 2*time.Second
	c, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, err
	}
	db := sql.OpenDB(c)
	db.SetMaxOpenConns(1)
	db.SetConnMaxLifetime(0)
	return db, nil
}

// Failover crashes the node running the services while a client writes
// rows through the VIP, and measures until a write succeeds again. It
// also records when the survivor showed each phase, and checks that every
// row whose commit was acknowledged is on the survivor.
func (l *Lab) Failover(ctx context.Context) (FailoverResult, error) {
	var res FailoverResult
	active, err := l.ActiveNode(ctx)
	if err != nil {
		return res, err
	}
	res.Crashed = active
	for _, n := range Nodes {
		if n.Name != active {
			res.Survivor = n.Name
		}
	}
	db, err := demoDB()
	if err != nil {
		return res, err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS failover (id BIGINT PRIMARY KEY, at DATETIME(6) NOT NULL)"); err != nil {
		return res, fmt.Errorf("write through the VIP before the crash: %w", err)
	}
	var base int64
	if err := db.QueryRowContext(ctx, "SELECT COALESCE(MAX(id),0) FROM failover").Scan(&base); err != nil {
		return res, err
	}

	// The writer: one row at a time, each acknowledged commit recorded.
	var mu sync.Mutex
	var committed []int64
	var crashAt, firstAfter time.Time
	wctx, stopWriter := context.WithCancel(ctx)
	defer stopWriter()
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		id := base
		for wctx.Err() == nil {
			id++
			_, err := db.ExecContext(wctx, "INSERT INTO failover VALUES (?, NOW(6))", id)
			now := time.Now()
			mu.Lock()
			if err == nil {
				committed = append(committed, id)
				if !crashAt.IsZero() && firstAfter.IsZero() && now.After(crashAt) {
					firstAfter = now
				}
			}
			mu.Unlock()
			if err != nil {
				time.Sleep(100 * time.Millisecond)
			} else {
				time.Sleep(20 * time.Millisecond)
			}
		}
	}()
	time.Sleep(2 * time.Second) // steady writes first

	// The phase watcher: the survivor's view, twice a second.
	phases := map[string]time.Duration{}
	var order []string
	note := func(name string, at time.Duration) {
		if _, seen := phases[name]; !seen {
			phases[name] = at
			order = append(order, name)
		}
	}
	mu.Lock()
	crashAt = time.Now()
	mu.Unlock()
	if err := l.Crash(ctx, active); err != nil {
		return res, err
	}
	c, err := l.Client()
	if err != nil {
		return res, err
	}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		mu.Lock()
		done := !firstAfter.IsZero()
		mu.Unlock()
		if done && len(phases) >= 6 {
			break
		}
		if time.Now().After(deadline) {
			stopWriter()
			return res, fmt.Errorf("no successful write through the VIP within 3 minutes of crashing %s (phases seen: %v)", active, order)
		}
		mon, err := crmMon(ctx, c, res.Survivor)
		at := time.Since(crashAt)
		if err == nil {
			for _, n := range mon.Nodes {
				if n.Name == active && (!n.Online || n.Unclean) {
					note("detected ("+active+" lost)", at)
				}
				if n.Name == active && !n.Online && !n.Unclean {
					note("fenced", at)
				}
			}
			for _, x := range mon.Resources {
				on := len(x.Nodes) == 1 && x.Nodes[0] == res.Survivor
				switch {
				case x.Promotable && x.Role == "Promoted" && on:
					note("DRBD promoted", at)
				case x.ID == "fs-haconf" && x.Role == "Started" && on:
					note("filesystem mounted", at)
				case x.ID == "mariadb" && x.Role == "Started" && on:
					note("MariaDB started", at)
				case x.ID == "vip" && x.Role == "Started" && on:
					note("VIP up", at)
				}
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
	time.Sleep(time.Second)
	stopWriter()
	<-writerDone
	mu.Lock()
	res.Failover = firstAfter.Sub(crashAt)
	res.Committed = len(committed)
	ids := append([]int64(nil), committed...)
	mu.Unlock()
	for _, name := range order {
		res.Phases = append(res.Phases, Phase{Name: name, After: phases[name]})
	}
	// Every acknowledged commit must be on the survivor.
	rows, err := db.QueryContext(ctx, "SELECT id FROM failover WHERE id > ?", base)
	if err != nil {
		return res, fmt.Errorf("read back through the VIP: %w", err)
	}
	defer rows.Close()
	have := map[int64]bool{}
	for rows.Next() {
		var id int64
		rows.Scan(&id)
		have[id] = true
	}
	for _, id := range ids {
		if have[id] {
			res.Found++
		}
	}
	if res.Found != res.Committed {
		return res, fmt.Errorf("%d of %d acknowledged rows are missing on %s", res.Committed-res.Found, res.Committed, res.Survivor)
	}
	return res, nil
}
