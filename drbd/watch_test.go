package drbd

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/haconf/haconf/internal/fixtures"
)

// scriptedStream hands out one scripted events2 session per call; an empty
// script is a failure to start. Each session's output ends (the tool died)
// unless hold is set, then it blocks until cancelled.
type scriptedStream struct {
	mu      sync.Mutex
	scripts []string
	starts  []time.Time
	hold    bool
}

func (s *scriptedStream) Stream(ctx context.Context, name string, args ...string) (io.ReadCloser, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.starts = append(s.starts, time.Now())
	if len(s.scripts) == 0 {
		return nil, errors.New("exec: drbdsetup: exit status 20")
	}
	script := s.scripts[0]
	s.scripts = s.scripts[1:]
	if script == "" {
		return nil, errors.New("exec: drbdsetup: exit status 20")
	}
	if len(s.scripts) == 0 && s.hold {
		pr, pw := io.Pipe()
		go func() {
			io.WriteString(pw, script)
			<-ctx.Done()
			pw.Close()
		}()
		return pr, nil
	}
	return io.NopCloser(strings.NewReader(script)), nil
}

func TestWatcherEvents2RestartsWithBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		now := string(fixtures.Read(t, "drbd", "handwritten-events2-9-now.txt"))
		sb := string(fixtures.Read(t, "drbd", "handwritten-events2-9-splitbrain.txt"))
		s := &scriptedStream{scripts: []string{now, "", "", sb}, hold: true}
		w := &Watcher{Stream: s, Version: "9.2.8", MinBackoff: time.Second, MaxBackoff: 4 * time.Second}
		ctx, cancel := context.WithCancel(t.Context())
		var got []string
		done := make(chan error)
		go func() {
			done <- w.Watch(ctx, func(st Status) { got = append(got, st.Resources[0].Connection) })
		}()
		time.Sleep(10 * time.Second)
		synctest.Wait()
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("Watch = %v", err)
		}
		start := s.starts[0]
		var offsets []time.Duration
		for _, st := range s.starts {
			offsets = append(offsets, st.Sub(start))
		}
		// The first session delivered its dump (backoff resets to 1s); two
		// failed starts double it: 1s, 2s, then the fourth start at +7s.
		want := []time.Duration{0, time.Second, 3 * time.Second, 7 * time.Second}
		if len(offsets) != len(want) {
			t.Fatalf("starts at %v, want %v", offsets, want)
		}
		for i := range want {
			if offsets[i] != want[i] {
				t.Fatalf("starts at %v, want %v", offsets, want)
			}
		}
		if got[0] != ConnConnected || got[len(got)-1] != ConnStandAlone {
			t.Fatalf("connection states seen %v", got)
		}
	})
}

// procSequence renders a different /proc/drbd on each read.
type procSequence struct {
	mu    sync.Mutex
	pages []string
	reads int
}

func (p *procSequence) Run(ctx context.Context, name string, args ...string) ([]byte, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	i := min(p.reads, len(p.pages)-1)
	p.reads++
	if p.pages[i] == "" {
		return nil, errors.New("cat: /proc/drbd: No such file or directory")
	}
	return []byte(p.pages[i]), nil
}

func TestWatcherPolls84(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		connected := string(fixtures.Read(t, "drbd", "handwritten-proc-8.4-connected.txt"))
		standalone := string(fixtures.Read(t, "drbd", "handwritten-proc-8.4-standalone.txt"))
		src := &procSequence{pages: []string{connected, connected, "", connected, standalone, standalone}}
		w := &Watcher{Run: src, Resource: "r0", Poll: 100 * time.Millisecond}
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		var seen []Resource
		_ = w.Watch(ctx, func(st Status) { seen = append(seen, st.Resources[0]) })
		if len(seen) != 2 || seen[0].Connection != ConnConnected || seen[1].Connection != ConnStandAlone || seen[1].Name != "r0" {
			t.Fatalf("changes seen: %+v", seen)
		}
	})
}
