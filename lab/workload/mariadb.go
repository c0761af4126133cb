package workload

import (
	"context"
	"database/sql"
	"io"
	"log"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"
)

// OpenMariaDB opens one connection's worth of pool to database name at
// addr (host:port) with short timeouts: a write through a VIP that moves
// fails within seconds instead of hanging.
func OpenMariaDB(addr, user, password, name string) (*sql.DB, error) {
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd = user, password
	cfg.Net, cfg.Addr, cfg.DBName = "tcp", addr, name
	cfg.Timeout, cfg.ReadTimeout, cfg.WriteTimeout = time.Second, 2*time.Second, 2*time.Second
	// The writer expects failed writes while the VIP moves and counts them;
	// the driver's own log line for each ("[mysql] packets.go:58 read tcp
	// ... i/o timeout") would only interleave with the report.
	cfg.Logger = mysql.Logger(log.New(io.Discard, "", 0))
	c, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, err
	}
	db := sql.OpenDB(c)
	db.SetMaxOpenConns(1)
	db.SetConnMaxLifetime(0)
	return db, nil
}

// Writer inserts numbered rows into table failover, one at a time, and
// records every commit the server acknowledged. Prepare it, Run it in its
// own goroutine, Mark the fault, then Check that every acknowledged row is
// still there.
type Writer struct {
	DB *sql.DB

	mu         sync.Mutex
	base       int64 // the highest id before this run
	committed  []int64
	acked      []time.Time // when each committed write was acknowledged
	marked     bool
	firstAfter time.Time
}

// Prepare creates the table when missing and starts numbering after the
// rows it already has.
func (w *Writer) Prepare(ctx context.Context) error {
	if _, err := w.DB.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS failover (id BIGINT PRIMARY KEY, at DATETIME(6) NOT NULL)"); err != nil {
		return err
	}
	var base int64
	if err := w.DB.QueryRowContext(ctx, "SELECT COALESCE(MAX(id),0) FROM failover").Scan(&base); err != nil {
		return err
	}
	w.mu.Lock()
	w.base = base
	w.mu.Unlock()
	return nil
}

// Run writes until ctx ends: every 20 ms while writes succeed, every
// 100 ms while they fail.
func (w *Writer) Run(ctx context.Context) {
	w.mu.Lock()
	id := w.base
	w.mu.Unlock()
	for ctx.Err() == nil {
		id++
		w.mu.Lock()
		afterMark := w.marked
		w.mu.Unlock()
		_, err := w.DB.ExecContext(ctx, "INSERT INTO failover VALUES (?, NOW(6))", id)
		now := time.Now()
		w.mu.Lock()
		if err == nil {
			w.committed = append(w.committed, id)
			w.acked = append(w.acked, now)
			if afterMark && w.firstAfter.IsZero() {
				w.firstAfter = now
			}
		}
		w.mu.Unlock()
		if err != nil {
			time.Sleep(100 * time.Millisecond)
		} else {
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// Mark says the fault is done (the node is off): from now on, the first
// acknowledged write that started after Mark is the first write after the
// failover. A write already in flight does not count: the dying node may
// have acknowledged it.
func (w *Writer) Mark() {
	w.mu.Lock()
	w.marked = true
	w.mu.Unlock()
}

// FirstAfterMark is when the first write started after Mark was
// acknowledged (false while there is none).
func (w *Writer) FirstAfterMark() (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.firstAfter, !w.firstAfter.IsZero()
}

// Committed is how many writes the server acknowledged so far.
func (w *Writer) Committed() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.committed)
}

// LongestGap is the longest time between two acknowledged writes in
// [from, to], counting from from to the first acknowledgement and from the
// last one to to: what a client writing through the VIP saw as the outage.
// With no acknowledgement in the window it is the whole window.
func (w *Writer) LongestGap(from, to time.Time) time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return longestGap(w.acked, from, to)
}

func longestGap(acked []time.Time, from, to time.Time) time.Duration {
	var longest time.Duration
	prev := from
	for _, at := range acked {
		if at.Before(from) || at.After(to) {
			continue
		}
		if d := at.Sub(prev); d > longest {
			longest = d
		}
		prev = at
	}
	if d := to.Sub(prev); d > longest {
		longest = d
	}
	return longest
}

// Check reads this run's rows back and counts how many acknowledged ones
// are there. Stop Run first.
func (w *Writer) Check(ctx context.Context) (committed, found int, err error) {
	w.mu.Lock()
	base := w.base
	ids := append([]int64(nil), w.committed...)
	w.mu.Unlock()
	rows, err := w.DB.QueryContext(ctx, "SELECT id FROM failover WHERE id > ?", base)
	if err != nil {
		return len(ids), 0, err
	}
	defer rows.Close()
	have := map[int64]bool{}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return len(ids), 0, err
		}
		have[id] = true
	}
	if err := rows.Err(); err != nil {
		return len(ids), 0, err
	}
	for _, id := range ids {
		if have[id] {
			found++
		}
	}
	return len(ids), found, nil
}
