package compute

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/haconf/haconf/compute/nova"
)

// A controller whose Nova is down at start fences the failed host, keeps
// the incident open, and evacuates once Nova answers.
func TestControllerWithNovaDownAtStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, "cmp1", "cmp2")
		r.nova.boot("a", "cmp1", 1)
		var up atomic.Bool
		var logins atomic.Int32
		r.ctl.Nova = &LazyNova{Connect: func(context.Context) (Nova, error) {
			logins.Add(1)
			if !up.Load() {
				return nil, errors.New("dial tcp 192.0.2.10:5000: connect: connection refused")
			}
			return r.nova, nil
		}}
		r.start()
		r.crash("cmp1")
		time.Sleep(time.Minute)
		ins := r.incidents(t)
		if len(ins) != 1 || ins[0].State != StateFenced || len(r.fence.off) != 1 {
			t.Fatalf("with Nova down: %v, fenced %v", summaries(ins), r.fence.off)
		}
		up.Store(true)
		time.Sleep(time.Minute)
		r.stop()
		if ins := r.incidents(t); ins[0].State != StateDone || r.nova.evacuated["a"] != 1 {
			t.Fatalf("after Nova came back: %v", summaries(ins))
		}
		if n := logins.Load(); n > 30 {
			t.Errorf("%d logins in two minutes: not paced", n)
		}
	})
}

var _ Nova = (*nova.Client)(nil)
