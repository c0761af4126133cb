package rabbitmq

import (
	"context"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/haconf/haconf/internal/testenv"
)

// connectionStart is the start of a real connection.start frame
// (RabbitMQ 3.10.8): type 1, channel 0, size, class 10, method 10,
// version 0-9, then the server properties (cut short here).
var connectionStart = []byte{1, 0, 0, 0, 0, 0, 0x10, 0, 0x0a, 0, 0x0a, 0, 9, 0, 0, 0, 0, 0xce}

// fakeServer accepts one connection, reads the 8-byte protocol header into
// got, answers with reply (or nothing when reply is nil) and closes (or,
// with hang, waits until the test ends).
func fakeServer(t *testing.T, reply []byte, hang bool) (addr string, got chan []byte) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { close(done); l.Close() })
	got = make(chan []byte, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		hdr := make([]byte, 8)
		n, _ := io.ReadFull(c, hdr)
		got <- hdr[:n]
		if reply != nil {
			c.Write(reply)
		}
		if hang {
			<-done
		}
	}()
	return l.Addr().String(), got
}

func TestHandshake(t *testing.T) {
	for _, tc := range []struct {
		name  string
		reply []byte
		hang  bool
		want  string // in the error; "" for success
	}{
		{name: "connection.start", reply: connectionStart},
		{name: "http", reply: []byte("HTTP/1.1 400 Bad Request\r\n\r\n"), want: "not an AMQP connection.start frame: got 48 54 54 50"},
		{name: "other method", reply: []byte{1, 0, 0, 0, 0, 0, 4, 0, 0x0a, 0, 0x1e, 0xce}, want: "not an AMQP connection.start frame"},
		{name: "other channel", reply: []byte{1, 0, 1, 0, 0, 0, 4, 0, 0x0a, 0, 0x0a, 0xce}, want: "not an AMQP connection.start frame"},
		{name: "protocol refused", reply: []byte("AMQP\x00\x00\x09\x01"), want: `server refused AMQP 0-9-1: it answered with protocol header "AMQP\x00\x00\t\x01"`},
		{name: "short and closed", reply: []byte{1, 0}, want: `read connection.start: unexpected EOF after "\x01\x00"`},
		{name: "closed", want: "read connection.start: EOF"},
		{name: "silent", hang: true, want: "read connection.start: context deadline exceeded"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, got := fakeServer(t, tc.reply, tc.hang)
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			defer cancel()
			err := Handshake(ctx, addr)
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("Handshake: %v, want %q", err, tc.want)
			}
			if h := <-got; string(h) != "AMQP\x00\x00\x09\x01" {
				t.Fatalf("protocol header sent: %q", h)
			}
		})
	}
	port, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	if err := Handshake(context.Background(), net.JoinHostPort("127.0.0.1", strconv.Itoa(port))); err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("nothing listening: %v", err)
	}
}
