package workload

import (
	"testing"
	"time"
)

func TestLongestGap(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 6, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	acked := []time.Time{at(-5), at(0.5), at(1), at(7.5), at(8), at(30)}
	for _, tc := range []struct {
		name     string
		from, to time.Time
		want     time.Duration
	}{
		{"outage inside", at(0), at(10), 6500 * time.Millisecond},
		{"window before any ack", at(-20), at(-10), 10 * time.Second},
		{"tail counts", at(0), at(25), 17 * time.Second},
		{"head counts", at(-4), at(1), 4500 * time.Millisecond},
	} {
		if got := longestGap(acked, tc.from, tc.to); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
