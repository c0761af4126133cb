package workload

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Endpoint says how to reach the broker.
type Endpoint struct {
	// Addrs are tried in order, as host:port: the VIP, or both
	// controllers' AMQP listeners.
	Addrs []string
	User  string
	// Password goes to the broker in the SASL exchange only: never in a
	// URL, a log line or an error. Read it from a root-only file.
	Password string
	// Vhost defaults to "/".
	Vhost string
	// DialTimeout bounds the TCP connect and the AMQP handshake of one
	// address (default 2s).
	DialTimeout time.Duration
	// Heartbeat is the AMQP heartbeat (default 2s): a peer that vanishes
	// without closing the socket is noticed after about two of them.
	Heartbeat time.Duration
}

// String leaves the password out (fmt uses it for %v and %+v).
func (e Endpoint) String() string {
	return fmt.Sprintf("amqp %s@%s vhost %s", e.User, strings.Join(e.Addrs, ","), e.vhost())
}

// GoString leaves the password out (%#v).
func (e Endpoint) GoString() string {
	type plain Endpoint
	if e.Password != "" {
		e.Password = "REDACTED"
	}
	return "workload.Endpoint" + strings.TrimPrefix(fmt.Sprintf("%#v", plain(e)), "workload.plain")
}

// LogValue leaves the password out.
func (e Endpoint) LogValue() slog.Value {
	return slog.GroupValue(slog.Any("addrs", e.Addrs), slog.String("user", e.User), slog.String("vhost", e.vhost()))
}

func (e Endpoint) vhost() string {
	if e.Vhost == "" {
		return "/"
	}
	return e.Vhost
}

// Dial connects to the first address that answers and returns the
// connection and that address.
func (e Endpoint) Dial(ctx context.Context) (*amqp.Connection, string, error) {
	if len(e.Addrs) == 0 {
		return nil, "", errors.New("amqp: no broker addresses")
	}
	timeout := cmp.Or(e.DialTimeout, 2*time.Second)
	var errs []error
	for _, addr := range e.Addrs {
		if err := ctx.Err(); err != nil {
			return nil, "", err
		}
		cfg := amqp.Config{
			SASL:      []amqp.Authentication{&amqp.PlainAuth{Username: e.User, Password: e.Password}},
			Vhost:     e.vhost(),
			Heartbeat: cmp.Or(e.Heartbeat, 2*time.Second),
			Dial: func(network, a string) (net.Conn, error) {
				d := net.Dialer{Timeout: timeout}
				c, err := d.DialContext(ctx, network, a)
				if err != nil {
					return nil, err
				}
				// Bounds the handshake; amqp091 clears it once open.
				return c, c.SetDeadline(time.Now().Add(timeout))
			},
			Properties: amqp.Table{"connection_name": "haconf"},
		}
		// No credentials in the URL: a parse error would quote it.
		conn, err := amqp.DialConfig("amqp://"+addr+"/", cfg)
		if err == nil {
			return conn, addr, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", addr, err))
	}
	return nil, "", fmt.Errorf("amqp: no broker answered: %w", errors.Join(errs...))
}

// fatal reports errors that retrying cannot fix: refused credentials or
// vhost, a queue declared with other arguments.
func fatal(err error) bool {
	var ae *amqp.Error
	return errors.As(err, &ae) && (ae.Code == amqp.AccessRefused || ae.Code == amqp.PreconditionFailed)
}

// Publisher publishes numbered persistent messages to a durable queue
// with publisher confirms and records which the broker confirmed. When
// the connection is lost (broker restart, failover) it reconnects to the
// first of Endpoint.Addrs that answers and goes on; messages in flight at
// that moment are recorded as unconfirmed, never as confirmed.
type Publisher struct {
	Endpoint
	// Queue is declared durable (not exclusive, not auto-delete) on every
	// connection. The cluster's policy mirrors it.
	Queue string
	// QueueArgs are the declaration's x-arguments, e.g.
	// {"x-queue-type": "quorum"}.
	QueueArgs map[string]any
	// Count stops after this many confirmed messages (0: until the context
	// ends).
	Count int
	// Interval between messages (0: as fast as confirms allow).
	Interval time.Duration
	// MaxInFlight is how many messages may await their confirm (default 16).
	MaxInFlight int
	// ConfirmTimeout: a confirm not back after this long means the
	// connection is gone (default 5s).
	ConfirmTimeout time.Duration
	// RetryInterval separates rounds of connection attempts (default 250ms).
	RetryInterval time.Duration
	// RunID tags this run's messages (default: random).
	RunID string
	Log   *slog.Logger

	mu   sync.Mutex
	res  Result
	seq  uint64
	last time.Time // last confirm
}

// Result is what a Publisher did.
type Result struct {
	RunID     string
	Published int // messages handed to a connection
	// Confirmed are the sequence numbers the broker acknowledged (and did
	// not return as unroutable), in order.
	Confirmed []uint64
	// Unconfirmed were published but nacked, returned, or unanswered when
	// the connection was lost: each may or may not be in the queue.
	Unconfirmed []uint64
	Nacked      int
	Returned    int
	Reconnects  []Reconnect
	// LongestGap is the longest time between two confirms: what a
	// failover cost this publisher.
	LongestGap time.Duration
}

// Reconnect is one lost connection and the one that replaced it.
type Reconnect struct {
	Lost      time.Time
	Connected time.Time // zero: the run ended before a broker answered
	From, To  string    // broker addresses
	Err       string    // why the old connection was given up
}

// MessageID is the AMQP message-id of message seq of run.
func MessageID(run string, seq uint64) string { return run + "-" + strconv.FormatUint(seq, 10) }

func (p *Publisher) log() *slog.Logger {
	if p.Log != nil {
		return p.Log
	}
	return slog.New(slog.DiscardHandler)
}

// Result returns a copy of what the publisher did so far.
func (p *Publisher) Result() Result {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := p.res
	r.Confirmed = slices.Clone(r.Confirmed)
	r.Unconfirmed = slices.Clone(r.Unconfirmed)
	r.Reconnects = slices.Clone(r.Reconnects)
	return r
}

// WaitConfirmed returns once n messages are confirmed in all, or with the
// context's error.
func (p *Publisher) WaitConfirmed(ctx context.Context, n int) error {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		p.mu.Lock()
		got := len(p.res.Confirmed)
		p.mu.Unlock()
		if got >= n {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d of %d messages confirmed: %w", got, n, ctx.Err())
		case <-t.C:
		}
	}
}

// Run publishes until Count messages are confirmed or ctx ends, then
// waits for the confirms still in flight. It returns an error only for
// what reconnecting cannot fix (refused credentials, a queue declared
// with other arguments); the Result is valid either way.
func (p *Publisher) Run(ctx context.Context) (Result, error) {
	if p.Queue == "" {
		return p.Result(), errors.New("amqp publisher: no queue")
	}
	p.mu.Lock()
	if p.RunID == "" {
		b := make([]byte, 6)
		_, _ = rand.Read(b)
		p.RunID = hex.EncodeToString(b)
	}
	p.res.RunID = p.RunID
	p.mu.Unlock()

	var lost *Reconnect
	for !p.finished(ctx) {
		conn, addr, err := p.Dial(ctx)
		if err != nil {
			if fatal(err) {
				return p.Result(), err
			}
			p.log().Debug("AMQP connect failed", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(cmp.Or(p.RetryInterval, 250*time.Millisecond)):
			}
			continue
		}
		if lost != nil {
			lost.Connected, lost.To = time.Now(), addr
			p.mu.Lock()
			p.res.Reconnects = append(p.res.Reconnects, *lost)
			p.mu.Unlock()
			p.log().Info("AMQP reconnected", "addr", addr, "after", lost.Connected.Sub(lost.Lost).Round(time.Millisecond).String())
			lost = nil
		} else {
			p.log().Info("AMQP connected", "addr", addr, "queue", p.Queue)
		}
		err = p.session(ctx, conn)
		_ = conn.CloseDeadline(time.Now().Add(time.Second))
		if err == nil {
			break
		}
		if fatal(err) {
			return p.Result(), err
		}
		p.log().Warn("AMQP connection lost", "addr", addr, "err", err)
		lost = &Reconnect{Lost: time.Now(), From: addr, Err: err.Error()}
	}
	if lost != nil {
		// Stopped before a broker answered again: Connected stays zero.
		p.mu.Lock()
		p.res.Reconnects = append(p.res.Reconnects, *lost)
		p.mu.Unlock()
	}
	return p.Result(), nil
}

func (p *Publisher) finished(ctx context.Context) bool {
	return ctx.Err() != nil || p.enough(0)
}

type inFlight struct {
	seq  uint64
	id   string
	sent time.Time
	dc   *amqp.DeferredConfirmation
}

var errConfirmTimeout = errors.New("no publisher confirm within the timeout")

// session publishes on one connection until the publisher is finished
// (nil) or the connection fails (its error).
func (p *Publisher) session(ctx context.Context, conn *amqp.Connection) error {
	window := max(cmp.Or(p.MaxInFlight, 16), 1)
	timeout := cmp.Or(p.ConfirmTimeout, 5*time.Second)
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	if err := ch.Confirm(false); err != nil {
		return fmt.Errorf("confirm mode: %w", err)
	}
	if _, err := ch.QueueDeclare(p.Queue, true, false, false, false, amqp.Table(p.QueueArgs)); err != nil {
		return fmt.Errorf("declare queue %s: %w", p.Queue, err)
	}
	// A return precedes its message's ack on the wire; the buffer holds
	// one per message in flight, so the reader never waits on it.
	returns := ch.NotifyReturn(make(chan amqp.Return, window+1))
	closed := ch.NotifyClose(make(chan *amqp.Error, 1))
	returned := map[string]bool{}
	var pending []inFlight

	settle := func(f inFlight) {
		for drained := false; !drained; {
			select {
			case r, ok := <-returns:
				if ok {
					returned[r.MessageId] = true
				} else {
					drained = true
				}
			default:
				drained = true
			}
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		switch {
		case !f.dc.Acked():
			p.res.Nacked++
			p.res.Unconfirmed = append(p.res.Unconfirmed, f.seq)
		case returned[f.id]:
			delete(returned, f.id)
			p.res.Returned++
			p.res.Unconfirmed = append(p.res.Unconfirmed, f.seq)
		default:
			now := time.Now()
			if !p.last.IsZero() && now.Sub(p.last) > p.res.LongestGap {
				p.res.LongestGap = now.Sub(p.last)
			}
			p.last = now
			p.res.Confirmed = append(p.res.Confirmed, f.seq)
		}
	}
	// abandon records what is still in flight when the connection goes:
	// acked ones count, the rest are in doubt.
	abandon := func(cause error) error {
		for _, f := range pending {
			select {
			case <-f.dc.Done():
				if f.dc.Acked() && !ch.IsClosed() {
					settle(f)
					continue
				}
			default:
			}
			p.mu.Lock()
			p.res.Unconfirmed = append(p.res.Unconfirmed, f.seq)
			p.mu.Unlock()
		}
		pending = nil
		return cause
	}
	var next time.Time
	for {
		// Settle what is done, oldest first (confirms arrive in order).
		for len(pending) > 0 {
			select {
			case <-pending[0].dc.Done():
				if !pending[0].dc.Acked() && ch.IsClosed() {
					// The library nacks what was in flight when the
					// channel closed: not the broker's answer.
					return abandon(fmt.Errorf("channel closed with %d messages in flight", len(pending)))
				}
				settle(pending[0])
				pending = pending[1:]
				continue
			default:
			}
			break
		}
		if len(pending) > 0 && time.Since(pending[0].sent) > timeout {
			return abandon(fmt.Errorf("%w (%s)", errConfirmTimeout, timeout))
		}
		stop := ctx.Err() != nil || p.enough(len(pending))
		if stop && len(pending) == 0 {
			return nil
		}
		if !stop && len(pending) < window {
			if wait := time.Until(next); wait > 0 {
				select {
				case e := <-closed:
					return abandon(closeErr(e))
				case <-ctx.Done():
					continue
				case <-time.After(wait):
				}
			}
			next = time.Now().Add(p.Interval)
			seq := p.nextSeq()
			id := MessageID(p.RunID, seq)
			dc, err := ch.PublishWithDeferredConfirm("", p.Queue, true, false, amqp.Publishing{
				DeliveryMode: amqp.Persistent,
				MessageId:    id,
				AppId:        "haconf",
				ContentType:  "text/plain",
				Timestamp:    time.Now(),
				Body:         []byte(id + "\n"),
			})
			if err != nil {
				// It may have reached the broker before the error.
				p.mu.Lock()
				p.res.Published++
				p.res.Unconfirmed = append(p.res.Unconfirmed, seq)
				p.mu.Unlock()
				return abandon(fmt.Errorf("publish: %w", err))
			}
			p.mu.Lock()
			p.res.Published++
			p.mu.Unlock()
			pending = append(pending, inFlight{seq: seq, id: id, sent: time.Now(), dc: dc})
			continue
		}
		// Wait for the oldest confirm (window full, or stopping).
		t := time.NewTimer(time.Until(pending[0].sent.Add(timeout)) + time.Millisecond)
		select {
		case <-pending[0].dc.Done():
		case e := <-closed:
			t.Stop()
			return abandon(closeErr(e))
		case <-t.C:
		}
		t.Stop()
	}
}

// enough reports whether the confirmed messages and the inFlight ones
// reach Count, so no more need to be sent.
func (p *Publisher) enough(inFlight int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.Count > 0 && len(p.res.Confirmed)+inFlight >= p.Count
}

func (p *Publisher) nextSeq() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seq++
	return p.seq
}

func closeErr(e *amqp.Error) error {
	if e == nil {
		return errors.New("channel closed")
	}
	return e
}
