package workload

import (
	"context"
	"errors"
	"fmt"
	"strings"

	amqp "github.com/rabbitmq/amqp091-go"
)

// ErrNoQueue means the queue to drain does not exist (on the broker that
// answered).
var ErrNoQueue = errors.New("queue does not exist")

// Drained is what Drain took out of a queue.
type Drained struct {
	Messages int
	// IDs counts the messages by message-id ("" for those without one).
	IDs map[string]int
}

// Drain takes every message out of queue and counts them by message-id.
// It is all or nothing: the messages are acknowledged together at the
// end, so if the connection fails on the way they all stay queued and
// Drain can simply be run again. Stop the publishers first.
func Drain(ctx context.Context, e Endpoint, queue string) (Drained, error) {
	d := Drained{IDs: map[string]int{}}
	conn, _, err := e.Dial(ctx)
	if err != nil {
		return d, err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return d, err
	}
	var last uint64
	for {
		if err := ctx.Err(); err != nil {
			return Drained{}, fmt.Errorf("drain %s after %d messages: %w", queue, d.Messages, err)
		}
		m, ok, err := ch.Get(queue, false)
		if err != nil {
			var ae *amqp.Error
			if errors.As(err, &ae) && ae.Code == amqp.NotFound {
				return Drained{}, fmt.Errorf("drain %s: %w", queue, ErrNoQueue)
			}
			return Drained{}, fmt.Errorf("drain %s after %d messages: %w", queue, d.Messages, err)
		}
		if !ok {
			break
		}
		d.Messages++
		d.IDs[m.MessageId]++
		last = m.DeliveryTag
	}
	if last > 0 {
		if err := ch.Ack(last, true); err != nil {
			return Drained{}, fmt.Errorf("drain %s: acknowledge %d messages: %w", queue, d.Messages, err)
		}
	}
	// Ack has no answer: closing the channel waits until the broker has
	// processed it.
	if err := ch.Close(); err != nil {
		return Drained{}, fmt.Errorf("drain %s: %w", queue, err)
	}
	return d, nil
}

// Verification compares what a Publisher had confirmed with what Drain
// found.
type Verification struct {
	Confirmed int
	// Missing were confirmed by the broker and are not in the queue: lost.
	Missing []uint64
	// Duplicated were confirmed and are in the queue more than once.
	Duplicated []uint64
	// InDoubtKept are unconfirmed messages that made it anyway.
	InDoubtKept int
	// Foreign are messages in the queue from other runs or publishers.
	Foreign int
}

// Verify checks that every message r confirmed is in d.
func Verify(r Result, d Drained) Verification {
	v := Verification{Confirmed: len(r.Confirmed)}
	ours := 0
	for _, seq := range r.Confirmed {
		switch n := d.IDs[MessageID(r.RunID, seq)]; {
		case n == 0:
			v.Missing = append(v.Missing, seq)
		case n > 1:
			v.Duplicated = append(v.Duplicated, seq)
		}
	}
	for _, seq := range r.Unconfirmed {
		if d.IDs[MessageID(r.RunID, seq)] > 0 {
			v.InDoubtKept++
		}
	}
	for id, n := range d.IDs {
		if strings.HasPrefix(id, r.RunID+"-") {
			ours += n
		}
	}
	v.Foreign = d.Messages - ours
	return v
}

// Err is nil when no confirmed message is missing.
func (v Verification) Err() error {
	if len(v.Missing) == 0 {
		return nil
	}
	show := v.Missing[:min(len(v.Missing), 20)]
	more := ""
	if len(v.Missing) > len(show) {
		more = fmt.Sprintf(" and %d more", len(v.Missing)-len(show))
	}
	return fmt.Errorf("%d of %d confirmed messages missing: %v%s", len(v.Missing), v.Confirmed, show, more)
}
