package lab

import (
	"context"
	"encoding/json"
	"os"
	"strconv"
	"testing"
	"time"
)

// TestLabFailoverBench is the failover benchmark (bench/failover/run, part
// of make bench): bootstrap the pair, then HACONF_FAILOVER_ROUNDS times
// crash the active node while a client writes rows through the VIP,
// restart it, wait until it rejoined and DRBD is UpToDate on both nodes.
// Each round's FailoverResult goes as a JSON line to
// HACONF_FAILOVER_RESULTS. Every round publishes confirmed messages
// through the crash and checks them, and waits until RabbitMQ runs on both
// nodes again before the next crash (a queue is only mirrored to a running
// node).
func TestLabFailoverBench(t *testing.T) {
	rounds, _ := strconv.Atoi(os.Getenv("HACONF_FAILOVER_ROUNDS"))
	out := os.Getenv("HACONF_FAILOVER_RESULTS")
	if rounds <= 0 || out == "" {
		t.Skip("a benchmark: bench/failover/run sets HACONF_FAILOVER_ROUNDS and HACONF_FAILOVER_RESULTS")
	}
	l, _ := newTestLab(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(10+rounds*8)*time.Minute)
	defer cancel()
	if err := l.Up(ctx); err != nil {
		t.Fatalf("lab up: %v", err)
	}
	start := time.Now()
	if _, err := l.Bootstrap(ctx); err != nil {
		t.Fatalf("bootstrap: %v", err)
	}
	if err := l.WaitSettled(ctx, 10*time.Minute, true); err != nil {
		t.Fatal(err)
	}
	t.Logf("bootstrapped and settled in %s", time.Since(start).Round(time.Second))
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	enc := json.NewEncoder(f)
	for i := 1; i <= rounds; i++ {
		fr, err := l.FailoverWith(ctx, FailoverOptions{Messages: true})
		t.Logf("round %d:\n%s", i, fr)
		if err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		enc.Encode(fr)
		f.Sync()
		if err := l.Start(ctx, fr.Crashed); err != nil {
			t.Fatal(err)
		}
		if err := l.WaitRejoined(ctx, fr.Crashed, 5*time.Minute); err != nil {
			t.Fatal(err)
		}
		settle := time.Now()
		if err := l.WaitSettled(ctx, 20*time.Minute, true); err != nil {
			t.Fatal(err)
		}
		t.Logf("round %d: %s rejoined, DRBD UpToDate and RabbitMQ running on both after %s more", i, fr.Crashed, time.Since(settle).Round(time.Second))
	}
}
