package testenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"
)

// FreePort returns a loopback port nothing listens on (for a moment): for
// a test's private server.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// WaitListening waits until something accepts TCP connections at addr. It
// gives up when ctx ends or when the server's process exits first (its
// exit status arrives on done, and is put back for other readers).
func WaitListening(ctx context.Context, addr string, done chan error) error {
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case e := <-done:
			done <- e
			return fmt.Errorf("exited: %v", e)
		case <-ctx.Done():
			return errors.Join(ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
