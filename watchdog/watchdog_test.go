package watchdog

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// scriptCheck fails or succeeds by script (true = healthy), then repeats
// the last entry; it can block to exercise timeouts and records overlap.
type scriptCheck struct {
	mu          sync.Mutex
	script      []bool
	runs        int
	block       time.Duration
	inFlight    int
	maxInFlight int
	remediated  []time.Time
}

func (c *scriptCheck) Name() string { return "script" }

func (c *scriptCheck) Run(ctx context.Context) error {
	c.mu.Lock()
	c.inFlight++
	c.maxInFlight = max(c.maxInFlight, c.inFlight)
	i := min(c.runs, len(c.script)-1)
	c.runs++
	ok := c.script[i]
	block := c.block
	c.mu.Unlock()
	defer func() { c.mu.Lock(); c.inFlight--; c.mu.Unlock() }()
	if block > 0 {
		select {
		case <-time.After(block):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if !ok {
		return errors.New("unhealthy")
	}
	return nil
}

func (c *scriptCheck) Remediate(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.remediated = append(c.remediated, time.Now())
	return nil
}

// remediations returns a copy of the remediation times (read under the
// lock: synctest's fake clock does not order the test against the loop).
func (c *scriptCheck) remediations() []time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Time(nil), c.remediated...)
}

func TestThresholdsCooldownAndClear(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// 2 failures (below N=3), 1 success, then 8 failures, then successes.
		script := []bool{false, false, true, false, false, false, false, false, false, false, false, true}
		c := &scriptCheck{script: script}
		w := &Watchdog{Specs: []Spec{{Check: c, Interval: time.Second, FailuresBeforeAction: 3, SuccessesBeforeClear: 2, Cooldown: 4 * time.Second}}}
		ctx, cancel := context.WithCancel(t.Context())
		go w.Run(ctx)
		start := time.Now()

		time.Sleep(2500 * time.Millisecond) // runs at 0,1,2: F F S
		synctest.Wait()
		if st := w.States()[0]; st.Failing || st.Remediations != 0 {
			t.Fatalf("after F F S: %+v", st)
		}
		time.Sleep(3 * time.Second) // runs at 3,4,5: three failures -> failing, remediate at 5s
		synctest.Wait()
		st := w.States()[0]
		if rem := c.remediations(); !st.Failing || len(rem) != 1 || rem[0].Sub(start) != 5*time.Second {
			t.Fatalf("after 3 failures: %+v remediated %v", st, rem)
		}
		time.Sleep(5 * time.Second) // runs 6..10 fail; cooldown 4s -> second remediation at 9s
		synctest.Wait()
		if rem := c.remediations(); len(rem) != 2 || rem[1].Sub(start) != 9*time.Second {
			t.Fatalf("cooldown: remediated at %v", rem)
		}
		time.Sleep(time.Second) // run at 11: success 1 of 2, still failing
		synctest.Wait()
		if !w.States()[0].Failing {
			t.Fatal("cleared after one success, want M=2")
		}
		time.Sleep(time.Second) // run at 12: success 2 -> cleared
		synctest.Wait()
		if st := w.States()[0]; st.Failing || st.ConsecutiveSuccesses != 2 {
			t.Fatalf("not cleared: %+v", st)
		}
		cancel()
	})
}

// A check that cleared and fails again is a new problem (seen in the lab:
// a second split brain a minute after the first waited for the cooldown):
// it is remediated without waiting for the previous episode's cooldown.
func TestCooldownEndsWhenCleared(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// F (remediate at 0) S S (cleared at 2) F (remediate at 3) F F (cooldown) S S
		c := &scriptCheck{script: []bool{false, true, true, false, false, false, true}}
		w := &Watchdog{Specs: []Spec{{Check: c, Interval: time.Second, FailuresBeforeAction: 1, SuccessesBeforeClear: 2, Cooldown: time.Minute}}}
		ctx, cancel := context.WithCancel(t.Context())
		go w.Run(ctx)
		start := time.Now()
		time.Sleep(5500 * time.Millisecond)
		synctest.Wait()
		cancel()
		rem := c.remediations()
		if len(rem) != 2 || rem[0].Sub(start) != 0 || rem[1].Sub(start) != 3*time.Second {
			t.Fatalf("remediated at %v, want at 0s and 3s", rem)
		}
	})
}

func TestTimeoutAndNoOverlap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := &scriptCheck{script: []bool{true}, block: 10 * time.Second}
		w := &Watchdog{Specs: []Spec{{Check: c, Interval: 100 * time.Millisecond, Timeout: 2 * time.Second, FailuresBeforeAction: 1}}}
		ctx, cancel := context.WithCancel(t.Context())
		go w.Run(ctx)
		w.Trigger("script") // a trigger during a run must not start a second run
		time.Sleep(7 * time.Second)
		synctest.Wait()
		st := w.States()[0]
		cancel()
		c.mu.Lock()
		maxInFlight := c.maxInFlight
		c.mu.Unlock()
		if maxInFlight != 1 {
			t.Fatalf("runs overlapped: %d in flight", maxInFlight)
		}
		// Each run times out after 2s, then waits 100ms (or a trigger).
		if st.Runs < 3 || st.Runs > 4 || st.LastError != context.DeadlineExceeded.Error() || !st.Failing {
			t.Fatalf("state %+v", st)
		}
	})
}
