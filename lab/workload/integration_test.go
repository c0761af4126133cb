package workload

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/haconf/haconf/internal/testenv"
)

func TestPublishConfirmDrain(t *testing.T) {
	b := broker(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p := &Publisher{Endpoint: b.endpoint(), Queue: "haconf-test-basic", Count: 500}
	res, err := p.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Confirmed) != 500 || res.Published != 500 || len(res.Unconfirmed) != 0 || len(res.Reconnects) != 0 {
		t.Fatalf("published %d, confirmed %d, unconfirmed %d, reconnects %d", res.Published, len(res.Confirmed), len(res.Unconfirmed), len(res.Reconnects))
	}
	if !slices.IsSorted(res.Confirmed) || res.Confirmed[0] != 1 || res.Confirmed[499] != 500 {
		t.Fatalf("confirmed %v...", res.Confirmed[:5])
	}
	d, err := Drain(ctx, b.endpoint(), p.Queue)
	if err != nil {
		t.Fatal(err)
	}
	v := Verify(res, d)
	if v.Err() != nil || d.Messages != 500 || v.Foreign != 0 || len(v.Duplicated) != 0 {
		t.Fatalf("drained %d: %+v: %v", d.Messages, v, v.Err())
	}
	// Drained means gone.
	if d, err := Drain(ctx, b.endpoint(), p.Queue); err != nil || d.Messages != 0 {
		t.Fatalf("second drain: %d messages, %v", d.Messages, err)
	}
	if _, err := Drain(ctx, b.endpoint(), "haconf-test-no-such-queue"); !errors.Is(err, ErrNoQueue) {
		t.Fatalf("drain of a missing queue: %v", err)
	}
}

// What reconnecting cannot fix ends Run at once, with the broker's reason.
func TestPublisherFatalErrors(t *testing.T) {
	b := broker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	bad := b.endpoint()
	bad.Password = "wrong-password-123"
	_, err := (&Publisher{Endpoint: bad, Queue: "haconf-test-fatal"}).Run(ctx)
	if err == nil || !strings.Contains(err.Error(), "username or password not allowed") || strings.Contains(err.Error(), bad.Password) {
		t.Fatalf("wrong password: %v", err)
	}
	if _, err := (&Publisher{Endpoint: b.endpoint(), Queue: "haconf-test-fatal", Count: 1}).Run(ctx); err != nil {
		t.Fatal(err)
	}
	quorum := &Publisher{Endpoint: b.endpoint(), Queue: "haconf-test-fatal", QueueArgs: map[string]any{"x-queue-type": "quorum"}, Count: 1}
	if _, err := quorum.Run(ctx); err == nil || !strings.Contains(err.Error(), "PRECONDITION_FAILED") {
		t.Fatalf("queue redeclared with other arguments: %v", err)
	}
	if ctx.Err() != nil {
		t.Fatal("a fatal error was retried until the deadline")
	}
}

// A message the broker could not route (its queue is gone, as a
// non-mirrored queue on a dead node) is acked after being returned: it
// must not count as confirmed.
func TestPublisherCountsReturnedAsUnconfirmed(t *testing.T) {
	b := broker(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p := &Publisher{Endpoint: b.endpoint(), Queue: "haconf-test-returned", MaxInFlight: 4}
	pctx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan Result, 1)
	go func() {
		r, _ := p.Run(pctx)
		done <- r
	}()
	if err := p.WaitConfirmed(ctx, 50); err != nil {
		t.Fatal(err)
	}
	ch := channel(ctx, t, b)
	if _, err := ch.QueueDelete(p.Queue, false, false, false); err != nil {
		t.Fatal(err)
	}
	for p.Result().Returned < 20 {
		select {
		case <-ctx.Done():
			t.Fatalf("no returns counted: %+v", p.Result())
		case <-time.After(10 * time.Millisecond):
		}
	}
	stop()
	r := <-done
	// Once the queue is gone every message comes back: none confirmed
	// after the first returned one.
	if r.Returned < 20 || r.Returned != len(r.Unconfirmed) || len(r.Confirmed)+len(r.Unconfirmed) != r.Published {
		t.Fatalf("published %d, confirmed %d, returned %d, unconfirmed %d", r.Published, len(r.Confirmed), r.Returned, len(r.Unconfirmed))
	}
	if last, first := slices.Max(r.Confirmed), slices.Min(r.Unconfirmed); last > first {
		t.Fatalf("message %d confirmed after %d was returned", last, first)
	}
}

// The acceptance tests for the failover tooling: publishers keep going
// while the broker goes down and comes back; afterwards every message the
// broker had confirmed is in its queue.

// SIGKILL: nothing flushed on the way out. A classic durable queue, as
// the 3.x mirrored mode uses. (RabbitMQ 3.10 leaves a quorum queue declared
// shortly before such a crash without a leader after the restart - the Ra
// server registry is not yet on disk - so no quorum queue here.)
func TestPublisherSurvivesBrokerCrash(t *testing.T) {
	b := broker(t)
	survive(t, b, b.kill, &Publisher{Queue: "haconf-test-crash-classic"})
}

// A clean stop (SIGTERM, as Pacemaker stops it on a switchover), with a
// classic and a quorum queue.
func TestPublisherSurvivesBrokerRestart(t *testing.T) {
	b := broker(t)
	survive(t, b, func() {
		if err := b.terminate(time.Minute); err != nil {
			t.Fatal(err)
		}
	}, &Publisher{Queue: "haconf-test-restart-classic"},
		&Publisher{Queue: "haconf-test-restart-quorum", QueueArgs: map[string]any{"x-queue-type": "quorum"}})
}

// channel opens a connection to b and a channel on it; the connection
// closes when the test ends.
func channel(ctx context.Context, t *testing.T, b *testBroker) *amqp.Channel {
	t.Helper()
	conn, _, err := b.endpoint().Dial(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

// declare declares the publishers' queues as Publisher does.
func declare(t *testing.T, b *testBroker, pubs ...*Publisher) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ch := channel(ctx, t, b)
	for _, p := range pubs {
		if _, err := ch.QueueDeclare(p.Queue, true, false, false, false, amqp.Table(p.QueueArgs)); err != nil {
			t.Fatalf("declare %s: %v", p.Queue, err)
		}
	}
}

// survive runs pubs against b, stops b with down and starts it again, and
// checks that nothing confirmed was lost.
func survive(t *testing.T, b *testBroker, down func(), pubs ...*Publisher) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	closed, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	// The queues exist before the publishers start, a few seconds before
	// the crash: RabbitMQ 3.10 writes a durable queue's declaration to
	// Mnesia's log asynchronously, and a queue declared under a second
	// before a SIGKILL was gone after the restart in one CI run (with it
	// every message confirmed into it). What is tested is that confirmed
	// messages survive, not a declaration racing the crash.
	declare(t, b, pubs...)
	time.Sleep(2 * time.Second)
	ep := b.endpoint()
	// A dead address first, as when the failed controller is listed first.
	ep.Addrs = append([]string{net.JoinHostPort("127.0.0.1", fmt.Sprint(closed))}, ep.Addrs...)
	var logs testenv.SyncBuffer // the publishers' loggers share it
	type outcome struct {
		res Result
		err error
	}
	done := make([]chan outcome, len(pubs))
	pctx, stop := context.WithCancel(ctx)
	defer stop()
	for i, p := range pubs {
		p.Endpoint = ep
		p.Log = slog.New(slog.NewTextHandler(&logs, nil)).With("queue", p.Queue)
		done[i] = make(chan outcome, 1)
		go func() {
			res, err := p.Run(pctx)
			done[i] <- outcome{res, err}
		}()
	}
	for _, p := range pubs {
		if err := p.WaitConfirmed(ctx, 300); err != nil {
			t.Fatalf("%s before the restart: %v\n%s", p.Queue, err, logs.String())
		}
	}
	before := make([]int, len(pubs))
	for i, p := range pubs {
		before[i] = len(p.Result().Confirmed)
	}
	restart := time.Now()
	down()
	if err := b.start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("broker down and back in %s", time.Since(restart).Round(10*time.Millisecond))
	for i, p := range pubs {
		if err := p.WaitConfirmed(ctx, before[i]+300); err != nil {
			t.Fatalf("%s after the restart: %v\n%s", p.Queue, err, logs.String())
		}
	}
	stop()
	for i, p := range pubs {
		o := <-done[i]
		if o.err != nil {
			t.Fatalf("%s: %v", p.Queue, o.err)
		}
		r := o.res
		if len(r.Reconnects) == 0 {
			t.Errorf("%s: no reconnect recorded", p.Queue)
		}
		d, err := Drain(ctx, b.endpoint(), p.Queue)
		if err != nil {
			t.Fatal(err)
		}
		v := Verify(r, d)
		t.Logf("%s: published %d, confirmed %d (%d before the restart), unconfirmed %d (%d of them kept), in the queue %d, duplicated %d, longest gap between confirms %s, reconnects %d",
			p.Queue, r.Published, len(r.Confirmed), before[i], len(r.Unconfirmed), v.InDoubtKept, d.Messages, len(v.Duplicated), r.LongestGap.Round(time.Millisecond), len(r.Reconnects))
		if err := v.Err(); err != nil {
			t.Errorf("%s: %v", p.Queue, err)
		}
		if v.Foreign != 0 || d.Messages != len(r.Confirmed)+v.InDoubtKept+len(v.Duplicated) {
			t.Errorf("%s: %d messages in the queue, %d confirmed, %d in doubt kept, %d duplicated, %d foreign", p.Queue, d.Messages, len(r.Confirmed), v.InDoubtKept, len(v.Duplicated), v.Foreign)
		}
		if got := len(r.Confirmed) + len(r.Unconfirmed); got != r.Published {
			t.Errorf("%s: %d confirmed + unconfirmed, %d published", p.Queue, got, r.Published)
		}
	}
	if t.Failed() {
		t.Log(logs.String())
	}
}
