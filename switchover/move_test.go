package switchover

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/haconf/haconf/internal/runner"
)

// fakeCluster is a stateful fake of the Pacemaker tools: crm_resource
// --move adds the cli-prefer constraint and starts the transition,
// --clear removes it, cibadmin shows it, and crm_mon serves captured
// states, one per reading once the move began (the last one repeats).
type fakeCluster struct {
	t  *testing.T
	mu sync.Mutex

	before     string   // crm_mon state before the move
	after      []string // crm_mon states after it, one per reading
	readings   int
	constraint bool
	moveFails  bool
	clearFails int // how many --clear calls fail
	calls      []string
	// cancelled are the calls made with a cancelled context.
	cancelled []string
}

func (c *fakeCluster) Run(ctx context.Context, name string, args ...string) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	call := name + " " + strings.Join(args, " ")
	c.calls = append(c.calls, call)
	if ctx.Err() != nil {
		c.cancelled = append(c.cancelled, call)
		return nil, ctx.Err()
	}
	fail := func(code int, msg string) ([]byte, error) {
		return nil, &runner.Error{Argv: append([]string{name}, args...), ExitCode: code, Stderr: msg, Err: fmt.Errorf("exit status %d", code)}
	}
	switch name {
	case "crm_resource":
		switch args[0] {
		case "--move":
			c.constraint = true
			if c.moveFails {
				return fail(1, "Error performing operation: Timer expired")
			}
			return []byte("Migration will take effect until: ...\n"), nil
		case "--clear":
			if c.clearFails > 0 {
				c.clearFails--
				return fail(1, "Error performing operation: Transport endpoint is not connected")
			}
			c.constraint = false
			return nil, nil
		case "--wait":
			return nil, nil
		}
	case "cibadmin":
		out := "<constraints>\n"
		if c.constraint {
			out += `  <rsc_location id="cli-prefer-drbd-r0-clone" rsc="drbd-r0-clone" role="Promoted"><rule id="cli-prefer-rule-drbd-r0-clone" score="INFINITY" boolean-op="and"><expression id="e" attribute="#uname" operation="eq" value="ctl2" type="string"/><date_expression id="d" operation="lt" end="2026-11-21 12:07:00Z"/></rule></rsc_location>` + "\n"
		}
		return []byte(out + "</constraints>\n"), nil
	case "crm_mon":
		if !c.movedLocked() {
			return fixture(c.t, c.before), nil
		}
		i := min(c.readings, len(c.after)-1)
		c.readings++
		return fixture(c.t, c.after[i]), nil
	}
	return fail(127, "not in the fake: "+call)
}

func (c *fakeCluster) movedLocked() bool {
	for _, call := range c.calls {
		if strings.HasPrefix(call, "crm_resource --move") {
			return true
		}
	}
	return false
}

func (c *fakeCluster) count(prefix string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, call := range c.calls {
		if strings.HasPrefix(call, prefix) {
			n++
		}
	}
	return n
}

func decided(t *testing.T) Decision {
	d := Decide(pair, "", facts(t, "ctl1-active"))
	if !d.OK() {
		t.Fatalf("decision: %+v", d.Failed())
	}
	return d
}

func TestSwitchMovesAndClears(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := &fakeCluster{t: t, before: "ctl1-active", after: []string{"ctl1-active", "ctl1-active", "move-mariadb-failed-ctl2", "ctl2-active-moved"}}
		// move-mariadb-failed-ctl2 carries a failure: for this test it is
		// an old one, already there when the decision was made.
		baseline := mon(t, "ctl1-active")
		baseline.FailedActions = mon(t, "move-mariadb-failed-ctl2").FailedActions
		var events []string
		m := &Mover{Run: c, Pair: pair, Timeout: 5 * time.Minute, Poll: 2 * time.Second, OnEvent: func(e Event) { events = append(events, e.Message) }}
		res, err := m.Switch(context.Background(), decided(t), baseline)
		if err != nil {
			t.Fatal(err)
		}
		if !res.Cleared || c.constraint {
			t.Error("the constraint is left behind")
		}
		if res.From != "ctl1" || res.To != "ctl2" || res.PromotedAfter != 6*time.Second || res.StartedAfter != 8*time.Second || res.Total != 8*time.Second {
			t.Errorf("result %+v", res)
		}
		if res.Final != "DRBD r0 Promoted on ctl2; fs-haconf, mariadb, vip, haproxy on ctl2" {
			t.Errorf("final %q", res.Final)
		}
		want := []string{
			"crm_resource --move --promoted -r drbd-r0-clone -N ctl2 --lifetime PT420S",
			"crm_mon --output-as=xml --inactive",
			"crm_mon --output-as=xml --inactive",
			"crm_mon --output-as=xml --inactive",
			"crm_mon --output-as=xml --inactive",
			"crm_resource --clear -r drbd-r0-clone",
			"cibadmin --query --scope constraints",
			"crm_resource --wait --timeout 60s",
			"crm_mon --output-as=xml --inactive",
		}
		if strings.Join(c.calls, "\n") != strings.Join(want, "\n") {
			t.Errorf("calls:\n%s\nwant:\n%s", strings.Join(c.calls, "\n"), strings.Join(want, "\n"))
		}
		joined := strings.Join(events, "\n")
		for _, e := range []string{"expires by itself in 7m0s", "DRBD r0 Promoted on ctl2", "fs-haconf started on ctl2", "haproxy started on ctl2", "constraint removed"} {
			if !strings.Contains(joined, e) {
				t.Errorf("no event %q in:\n%s", e, joined)
			}
		}
	})
}

func TestSwitchClearsOnTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := &fakeCluster{t: t, before: "ctl1-active", after: []string{"ctl1-active"}}
		m := &Mover{Run: c, Pair: pair, Timeout: 5 * time.Minute}
		start := time.Now()
		res, err := m.Switch(context.Background(), decided(t), mon(t, "ctl1-active"))
		if !errors.Is(err, ErrAborted) || !strings.Contains(err.Error(), "did not run on ctl2 within 5m0s") {
			t.Fatalf("err = %v", err)
		}
		if !res.Cleared || c.constraint {
			t.Error("the constraint is left behind after a timeout")
		}
		if took := time.Since(start); took != 5*time.Minute {
			t.Errorf("gave up after %s", took)
		}
		if c.count("crm_resource --wait") != 0 {
			t.Error("settle wait after a failed switchover")
		}
		if res.Final != "DRBD r0 Promoted on ctl1; fs-haconf, mariadb, vip, haproxy on ctl1" {
			t.Errorf("final %q", res.Final)
		}
	})
}

func TestSwitchClearsWhenInterrupted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := &fakeCluster{t: t, before: "ctl1-active", after: []string{"ctl1-active"}}
		m := &Mover{Run: c, Pair: pair}
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(7*time.Second, cancel) // Ctrl-C during the wait
		res, err := m.Switch(ctx, decided(t), mon(t, "ctl1-active"))
		if !errors.Is(err, ErrAborted) || !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v", err)
		}
		if !res.Cleared || c.constraint {
			t.Error("the constraint is left behind after Ctrl-C")
		}
		for _, call := range c.cancelled {
			if strings.HasPrefix(call, "crm_resource") || strings.HasPrefix(call, "cibadmin") {
				t.Errorf("%q ran with the cancelled context", call)
			}
		}
	})
}

func TestSwitchAbortsOnNewFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := &fakeCluster{t: t, before: "ctl1-active", after: []string{"move-mariadb-failed-ctl2"}}
		m := &Mover{Run: c, Pair: pair}
		res, err := m.Switch(context.Background(), decided(t), mon(t, "ctl1-active"))
		if !errors.Is(err, ErrAborted) || !strings.Contains(err.Error(), "mariadb_start_0 failed on ctl2") {
			t.Fatalf("err = %v", err)
		}
		if !res.Cleared || c.constraint || res.Total != 2*time.Second {
			t.Errorf("result %+v (constraint left: %v)", res, c.constraint)
		}
	})
}

func TestSwitchMoveFails(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := &fakeCluster{t: t, before: "ctl1-active", moveFails: true}
		m := &Mover{Run: c, Pair: pair}
		res, err := m.Switch(context.Background(), decided(t), mon(t, "ctl1-active"))
		if !errors.Is(err, ErrAborted) || !strings.Contains(err.Error(), "Timer expired") {
			t.Fatalf("err = %v", err)
		}
		if !res.Cleared || c.constraint {
			t.Error("a constraint written by a failed move is left behind")
		}
	})
}

func TestSwitchClearRetriesThenReports(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := &fakeCluster{t: t, before: "ctl1-active", after: []string{"ctl2-active-moved"}, clearFails: 1}
		m := &Mover{Run: c, Pair: pair}
		if _, err := m.Switch(context.Background(), decided(t), mon(t, "ctl1-active")); err != nil || c.constraint {
			t.Fatalf("one failed clear: err %v, constraint left %v", err, c.constraint)
		}

		c = &fakeCluster{t: t, before: "ctl1-active", after: []string{"ctl2-active-moved"}, clearFails: 100}
		res, err := m2(c).Switch(context.Background(), decided(t), mon(t, "ctl1-active"))
		if err == nil || res.Cleared || !strings.Contains(err.Error(), "expires by itself within 7m0s, or run: crm_resource --clear -r drbd-r0-clone") {
			t.Fatalf("clear never works: cleared %v, err %v", res.Cleared, err)
		}
		if n := c.count("crm_resource --clear"); n != 3 {
			t.Errorf("%d clear attempts, want 3", n)
		}
	})
}

func m2(c *fakeCluster) *Mover { return &Mover{Run: c, Pair: pair} }

func TestSwitchRefusesARefusedDecision(t *testing.T) {
	c := &fakeCluster{t: t, before: "ctl2-standby"}
	d := Decide(pair, "", facts(t, "ctl2-standby"))
	if _, err := m2(c).Switch(context.Background(), d, mon(t, "ctl2-standby")); err == nil || len(c.calls) != 0 {
		t.Fatalf("err %v, calls %v", err, c.calls)
	}
}
