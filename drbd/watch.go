package drbd

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"time"
)

// Streamer starts a long-running command and returns its standard output;
// the command ends when ctx is cancelled or the reader is closed.
type Streamer interface {
	Stream(ctx context.Context, name string, args ...string) (io.ReadCloser, error)
}

// Watcher follows DRBD state changes as they happen: on DRBD 9 it streams
// `drbdsetup events2 --now --statistics` and restarts it with backoff when
// it dies; on DRBD 8.4 (or without a Streamer) it polls /proc/drbd.
type Watcher struct {
	Run    Runner
	Stream Streamer
	// Version is the module version; "" detects it from /proc/drbd.
	Version string
	// Resource and Minor name the 8.4 minor (8.4 only knows minors).
	Resource string
	Minor    int
	// Poll is the 8.4 poll interval (default 500ms).
	Poll time.Duration
	// MinBackoff and MaxBackoff bound the delay before restarting events2
	// or retrying a failed read (defaults 1s and 30s).
	MinBackoff, MaxBackoff time.Duration
	Log                    *slog.Logger
}

func (w *Watcher) log() *slog.Logger {
	if w.Log != nil {
		return w.Log
	}
	return slog.New(slog.DiscardHandler)
}

// Watch calls onChange with the full state whenever it changes, starting
// with the current state, until ctx ends. It returns ctx's error.
func (w *Watcher) Watch(ctx context.Context, onChange func(Status)) error {
	bo := w.backoff()
	version := w.Version
	for version == "" {
		out, err := w.Run.Run(ctx, "cat", "/proc/drbd")
		if err == nil {
			var st Status
			if st, err = ParseProcDRBD(out); err == nil && st.Version != "" {
				version = st.Version
				break
			}
		}
		w.log().Warn("drbd version unknown, retrying", "err", err)
		if !bo.sleep(ctx) {
			return ctx.Err()
		}
	}
	if Is84(version) || w.Stream == nil {
		return w.poll(ctx, version, onChange)
	}
	return w.events(ctx, onChange)
}

func (w *Watcher) poll(ctx context.Context, version string, onChange func(Status)) error {
	every := w.Poll
	if every == 0 {
		every = 500 * time.Millisecond
	}
	bo := w.backoff()
	var last *Status
	for {
		st, err := w.read(ctx, version)
		wait := every
		if err != nil {
			w.log().Warn("drbd state read failed", "err", err)
			wait = bo.next()
		} else {
			bo.reset()
			if last == nil || !reflect.DeepEqual(*last, st) {
				last = &st
				onChange(st)
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}

func (w *Watcher) read(ctx context.Context, version string) (Status, error) {
	if !Is84(version) {
		out, err := w.Run.Run(ctx, "drbdsetup", "status", "--json")
		if err != nil {
			return Status{}, err
		}
		st, err := ParseStatusJSON(out)
		st.Version = version
		return st, err
	}
	out, err := w.Run.Run(ctx, "cat", "/proc/drbd")
	if err != nil {
		return Status{}, err
	}
	st, err := ParseProcDRBD(out)
	for i := range st.Resources {
		if st.Resources[i].Minor == w.Minor {
			st.Resources[i].Name = w.Resource
		}
	}
	return st, err
}

func (w *Watcher) events(ctx context.Context, onChange func(Status)) error {
	bo := w.backoff()
	var last *Status
	for ctx.Err() == nil {
		synced, err := w.session(ctx, func(st Status) {
			if last == nil || !reflect.DeepEqual(*last, st) {
				last = &st
				onChange(st)
			}
		})
		if ctx.Err() != nil {
			break
		}
		if synced {
			bo.reset()
		}
		w.log().Warn("drbdsetup events2 ended, restarting", "err", err, "after", bo.peek())
		if !bo.sleep(ctx) {
			break
		}
	}
	return ctx.Err()
}

// session runs one events2 process; it reports whether the initial dump
// arrived.
func (w *Watcher) session(ctx context.Context, emit func(Status)) (bool, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	rc, err := w.Stream.Stream(ctx, "drbdsetup", "events2", "--now", "--statistics")
	if err != nil {
		return false, err
	}
	defer rc.Close()
	m := NewModel()
	sc := bufio.NewScanner(rc)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		e, err := ParseEvent(sc.Text())
		if err != nil {
			w.log().Debug("events2 line skipped", "err", err)
			continue
		}
		m.Apply(e)
		if m.Synced {
			emit(m.Status())
		}
	}
	if err := sc.Err(); err != nil {
		return m.Synced, err
	}
	return m.Synced, fmt.Errorf("events2: %w", io.EOF)
}

type backoff struct{ cur, min, max time.Duration }

func (w *Watcher) backoff() *backoff {
	b := &backoff{min: w.MinBackoff, max: w.MaxBackoff}
	if b.min == 0 {
		b.min = time.Second
	}
	if b.max == 0 {
		b.max = 30 * time.Second
	}
	b.cur = b.min
	return b
}

func (b *backoff) peek() time.Duration { return b.cur }
func (b *backoff) reset()              { b.cur = b.min }
func (b *backoff) next() time.Duration {
	d := b.cur
	b.cur = min(b.cur*2, b.max)
	return d
}
func (b *backoff) sleep(ctx context.Context) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(b.next()):
		return true
	}
}
