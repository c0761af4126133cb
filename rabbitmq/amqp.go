package rabbitmq

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"
)

// amqpHeader opens an AMQP 0-9-1 connection.
const amqpHeader = "AMQP\x00\x00\x09\x01"

// Handshake sends the AMQP 0-9-1 protocol header to addr (host:port) and
// reads the server's first frame, which must be connection.start: proof
// that the node's AMQP listener is up and its Erlang side answers,
// without credentials. It closes the connection right after, which
// RabbitMQ logs: "accepting AMQP connection" (info) and "client
// unexpectedly closed TCP connection" (warning).
func Handshake(ctx context.Context, addr string) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	if _, err := io.WriteString(c, amqpHeader); err != nil {
		return fmt.Errorf("send protocol header: %w", err)
	}
	// Frame header (type, channel, payload size), then the method's class
	// and method ids.
	var f [11]byte
	n, err := io.ReadFull(c, f[:])
	if n >= 8 && string(f[:4]) == "AMQP" {
		return fmt.Errorf("server refused AMQP 0-9-1: it answered with protocol header %q", f[:8])
	}
	if err != nil {
		// The connection's deadline is the context's.
		if errors.Is(err, os.ErrDeadlineExceeded) {
			err = cmpOr(ctx.Err(), context.DeadlineExceeded)
		}
		if n > 0 {
			return fmt.Errorf("read connection.start: %w after %q", err, f[:n])
		}
		return fmt.Errorf("read connection.start: %w", err)
	}
	typ, channel := f[0], binary.BigEndian.Uint16(f[1:3])
	class, method := binary.BigEndian.Uint16(f[7:9]), binary.BigEndian.Uint16(f[9:11])
	if typ != 1 || channel != 0 || class != 10 || method != 10 {
		return fmt.Errorf("not an AMQP connection.start frame: got % x", f[:])
	}
	return nil
}
