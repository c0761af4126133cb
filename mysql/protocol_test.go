package mysql

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/haconf/haconf/internal/proc"
	"github.com/haconf/haconf/internal/runner"
	"github.com/haconf/haconf/internal/testenv"
)

func TestHandshakeRefusesNonMySQL(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := Handshake(ctx, filepath.Join(t.TempDir(), "none.sock")); err == nil {
		t.Fatal("handshake on a missing socket succeeded")
	}
}

// mariadbGreeting is the Initial Handshake Packet's payload of MariaDB
// 10.11.19 (Debian 12), captured from the test server: connection id 4,
// capabilities 0x81fff7fe (no CLIENT_MYSQL), plugin mysql_native_password.
var mariadbGreeting = unhex("0a352e352e352d31302e31312e31392d4d6172696144422d302b6465623132753100" +
	"04000000" + "4e6844576826247e" + "00" + "fef7" + "08" + "0200" + "ff81" + "15" +
	"000000000000" + "1d000000" + "713c7354296d6a4b79417651" + "00" +
	"6d7973716c5f6e61746976655f70617373776f726400")

// mysqlGreeting is a MySQL 8.0 greeting built field by field from the
// protocol documentation (not a capture): CLIENT_MYSQL set, so the 4
// bytes after the 6-byte filler are filler too, and caching_sha2_password.
var mysqlGreeting = unhex("0a" + hex.EncodeToString([]byte("8.0.36\x00")) +
	"2a000000" + "0102030405060708" + "00" + "ffff" + "ff" + "0200" + "ffdf" + "15" +
	"00000000000000000000" + "090a0b0c0d0e0f1011121314" + "00" +
	hex.EncodeToString([]byte("caching_sha2_password\x00")))

// accessDenied is the ERR packet MariaDB 10.11 sends when root is not
// socket-authenticated (as received by the integration test).
var accessDenied = append(unhex("ff1504"), "#28000Access denied for user 'root'@'localhost' (using password: NO)"...)

func unhex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

func TestParseGreeting(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      []byte
		want    greeting
		wantErr string
	}{
		{name: "mariadb 10.11", in: mariadbGreeting, want: greeting{Version: "5.5.5-10.11.19-MariaDB-0+deb12u1", ConnID: 4, Caps: 0x81fff7fe, Plugin: "mysql_native_password"}},
		{name: "mysql 8.0", in: mysqlGreeting, want: greeting{Version: "8.0.36", ConnID: 42, Caps: 0xdfffffff, Plugin: "caching_sha2_password"}},
		{name: "plugin name without NUL", in: mysqlGreeting[:len(mysqlGreeting)-1], want: greeting{Version: "8.0.36", ConnID: 42, Caps: 0xdfffffff, Plugin: "caching_sha2_password"}},
		{name: "pre-4.1 server", in: mariadbGreeting[:34+15], want: greeting{Version: "5.5.5-10.11.19-MariaDB-0+deb12u1", ConnID: 4, Caps: 0xf7fe}},
		{name: "truncated scramble", in: mariadbGreeting[:34+15+16+5], wantErr: "truncated scramble"},
		{name: "truncated", in: mariadbGreeting[:20], wantErr: "greeting: truncated"},
		{name: "protocol 9", in: []byte{9, '3', '.', '2', 0}, wantErr: "not protocol version 10"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, err := parseGreeting(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || g != tc.want {
				t.Fatalf("got %+v, %v; want %+v", g, err, tc.want)
			}
		})
	}
}

func TestHandshakeResponse(t *testing.T) {
	want := unhex("00820800" + // PROTOCOL_41 | SECURE_CONNECTION | PLUGIN_AUTH
		"00000001" + // max packet size 16 MiB
		"2d" + // utf8mb4_general_ci
		strings.Repeat("00", 19) + "00000000" + // reserved, MariaDB extended capabilities
		"726f6f7400" + // "root"
		"00" + // auth response: length 0
		hex.EncodeToString([]byte("mysql_native_password\x00")))
	if got := handshakeResponse("root", "mysql_native_password"); !bytes.Equal(got, want) {
		t.Fatalf("handshake response\n got %x\nwant %x", got, want)
	}
}

func TestParseErr(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
		want serverError
	}{
		{"after the response", accessDenied, serverError{1045, "28000", "Access denied for user 'root'@'localhost' (using password: NO)"}},
		{"instead of the greeting", append(unhex("ff1004"), "Too many connections"...), serverError{1040, "", "Too many connections"}},
		{"truncated", []byte{0xff}, serverError{Message: "truncated error packet"}},
	} {
		if got := parseErr(tc.in); *got != tc.want {
			t.Errorf("%s: got %+v, want %+v", tc.name, *got, tc.want)
		}
	}
}

func TestPacketFraming(t *testing.T) {
	var b bytes.Buffer
	if err := writePacket(&b, 3, []byte{comQuit}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b.Bytes(), []byte{1, 0, 0, 3, comQuit}) {
		t.Fatalf("framed %x", b.Bytes())
	}
	seq, p, err := readPacket(&b)
	if err != nil || seq != 3 || !bytes.Equal(p, []byte{comQuit}) {
		t.Fatalf("read back %d %x %v", seq, p, err)
	}
	if _, _, err := readPacket(bytes.NewReader([]byte{0xff, 0xff, 0xff, 0})); err == nil {
		t.Fatal("a 16 MiB packet in the connection phase was accepted")
	}
}

// fakeServer plays a MariaDB server's side of one connection on c: it
// sends greeting, then for every client packet it records it and sends
// the next reply. It closes c when it runs out of replies or the client
// hangs up, and returns what the client sent.
func fakeServer(c net.Conn, greeting []byte, replies ...[]byte) <-chan [][]byte {
	got := make(chan [][]byte, 1)
	go func() {
		defer c.Close()
		var sent [][]byte
		defer func() { got <- sent }()
		seq := byte(0)
		if writePacket(c, seq, greeting) != nil {
			return
		}
		for {
			s, p, err := readPacket(c)
			if err != nil {
				return
			}
			sent = append(sent, append([]byte{s}, p...))
			if len(replies) == 0 {
				return
			}
			seq = s + 1
			if writePacket(c, seq, replies[0]) != nil {
				return
			}
			replies = replies[1:]
		}
	}()
	return got
}

// TestLogin runs the monitor's login against scripted server replies and
// checks what the client sent: "seq:payload" in hex per packet.
func TestLogin(t *testing.T) {
	response := "01:" + hex.EncodeToString(handshakeResponse("root", "mysql_native_password"))
	switchTo := func(plugin string) []byte { return append(append([]byte{authSwitch}, plugin...), 0, 1, 2, 3, 0) }
	for _, tc := range []struct {
		name    string
		replies [][]byte
		want    loginOutcome
		sent    []string
	}{
		{"ok then quit", [][]byte{{okPacket, 0, 0, 2, 0, 0, 0}}, loggedIn, []string{response, "00:01"}},
		{"access denied", [][]byte{accessDenied}, refused, []string{response}},
		{"switch to unix_socket", [][]byte{switchTo("unix_socket"), {okPacket, 0, 0, 2, 0, 0, 0}}, loggedIn, []string{response, "03:", "00:01"}},
		{"switch to ed25519 then denied", [][]byte{switchTo("client_ed25519"), accessDenied}, refused, []string{response, "03:"}},
		{"more data wanted", [][]byte{{authMoreData, 4}}, abandoned, []string{response}},
		{"endless switches", [][]byte{switchTo("dialog"), switchTo("dialog"), switchTo("dialog"), switchTo("dialog"), switchTo("dialog")}, abandoned, []string{response, "03:", "05:", "07:", "09:"}},
		{"hang-up", nil, abandoned, []string{response}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cli, srv := net.Pipe()
			defer cli.Close()
			got := fakeServer(srv, mariadbGreeting, tc.replies...)
			cli.SetDeadline(time.Now().Add(5 * time.Second))
			if _, _, err := readPacket(cli); err != nil {
				t.Fatal(err)
			}
			g, _ := parseGreeting(mariadbGreeting)
			out, err := login(cli, g, "root")
			if out != tc.want {
				t.Fatalf("outcome %v (%v), want %v", out, err, tc.want)
			}
			if out == refused && !strings.Contains(err.Error(), "1045") {
				t.Fatalf("refused with %v", err)
			}
			cli.Close()
			var sent []string
			for _, p := range <-got {
				sent = append(sent, hex.EncodeToString(p[:1])+":"+hex.EncodeToString(p[1:]))
			}
			if !slices.Equal(sent, tc.sent) {
				t.Fatalf("client sent %q, want %q", sent, tc.sent)
			}
		})
	}
}

// TestHandshakeServerAnswersWithError: a server that refuses the
// monitor's login, or refuses the connection instead of greeting, is up.
func TestHandshakeServerAnswersWithError(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "mysqld.sock")
	ln, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for _, tc := range []struct {
		name     string
		greeting []byte
		replies  [][]byte
		sent     int
	}{
		{"login refused", mariadbGreeting, [][]byte{accessDenied}, 1},
		{"too many connections", append(unhex("ff1004"), "Too many connections"...), nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got <-chan [][]byte
			accepted := make(chan struct{})
			go func() {
				defer close(accepted)
				if c, err := ln.Accept(); err == nil {
					got = fakeServer(c, tc.greeting, tc.replies...)
				}
			}()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := Handshake(ctx, socket); err != nil {
				t.Fatalf("handshake: %v", err)
			}
			<-accepted
			if got == nil {
				t.Fatal("the fake server accepted no connection")
			}
			if sent := <-got; len(sent) != tc.sent {
				t.Fatalf("client sent %d packets, want %d", len(sent), tc.sent)
			}
		})
	}
}

// server is a private mariadbd for the tests.
type server struct {
	socket, log string
}

// startServer initializes a private datadir the way haconf's bootstrap
// does (root@localhost authenticates by unix_socket), starts mariadbd on
// it as the resource agent does, and waits until it answers. The server
// is stopped at the end of the test. It needs root.
func startServer(t *testing.T, ctx context.Context) server {
	t.Helper()
	bin := testenv.RequireCommands(t, "mariadbd")[0]
	dir := t.TempDir()
	m := testenv.InstallMariaDB(t, dir)
	cnf, datadir := m.Config, m.Datadir
	s := server{socket: filepath.Join(dir, "mysqld.sock"), log: filepath.Join(dir, "error.log")}
	pid, err := runner.Exec{}.StartDaemon(bin, []string{
		"--defaults-file=" + cnf, "--datadir=" + datadir, "--pid-file=" + filepath.Join(dir, "mysqld.pid"),
		"--socket=" + s.socket, "--log-error=" + s.log, "--user=root",
	}, s.log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		syscall.Kill(pid, syscall.SIGTERM)
		for deadline := time.Now().Add(time.Minute); proc.Alive(pid); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	for {
		hctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := Handshake(hctx, s.socket)
		cancel()
		if err == nil {
			return s
		}
		if ctx.Err() != nil || !proc.Alive(pid) {
			b, _ := os.ReadFile(s.log)
			t.Fatalf("mariadbd (pid %d) does not answer on %s: %v\n%s", pid, s.socket, err, b)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// greetOnly is the monitor's old check: read the greeting and hang up. It
// returns the connection id from the greeting.
func greetOnly(t *testing.T, ctx context.Context, socket string) uint32 {
	t.Helper()
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, p, err := readPacket(c)
	if err != nil {
		t.Fatal(err)
	}
	g, err := parseGreeting(p)
	if err != nil {
		t.Fatal(err)
	}
	return g.ConnID
}

// logLines counts the error log's lines containing s.
func logLines(t *testing.T, path, s string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), s)
}

// abortedBarrier makes the old greeting-only check and waits until the
// server has logged its "Aborted connection" line. mariadbd logs when a
// connection's thread ends, after the client is gone; a warning for any
// earlier connection would be in the log by then (plus a grace period for
// threads that end out of order). It returns the log's count of aborted
// connections.
func abortedBarrier(t *testing.T, ctx context.Context, a server) int {
	t.Helper()
	id := greetOnly(t, ctx, a.socket)
	line := "Aborted connection " + strconv.FormatUint(uint64(id), 10) + " to db"
	for logLines(t, a.log, line) == 0 {
		if ctx.Err() != nil {
			t.Fatalf("the greeting-only connection %d left no %q in %s", id, line, a.log)
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	return logLines(t, a.log, "Aborted connection")
}

// TestHandshakeLeavesNoAbortedConnection runs the monitor's check
// (Handshake) against a real
// mariadbd (root by unix_socket, as haconf's bootstrap sets it up) and
// counts the error log's warnings: the old greeting-only check leaves an
// "Aborted connection" per run, the login none. With root on a password
// instead, the login is refused: the monitor still succeeds and MariaDB
// logs "Access denied" per run, and still no aborted connection.
func TestHandshakeLeavesNoAbortedConnection(t *testing.T) {
	testenv.RequireCommands(t, "mariadb")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	a := startServer(t, ctx) // waits with Handshake too

	// The old check: one aborted connection per run, and the only one so
	// far (the start's probes left none).
	n := abortedBarrier(t, ctx, a)
	if n != 1 {
		t.Fatalf("after start and one greeting-only check: %d aborted connections, want 1", n)
	}
	if m := abortedBarrier(t, ctx, a); m != n+1 {
		t.Fatalf("a second greeting-only check: %d -> %d aborted connections", n, m)
	}
	n += 1

	const runs = 10
	for i := range runs {
		if err := Handshake(ctx, a.socket); err != nil {
			t.Fatalf("monitor %d: %v", i, err)
		}
	}
	r, err := probe(ctx, a.socket)
	if err != nil || r.Outcome != loggedIn {
		t.Fatalf("login as root by unix_socket: %+v, %v", r, err)
	}
	m := abortedBarrier(t, ctx, a)
	t.Logf("aborted connections: %d after start and 2 greeting-only checks, %d after %d monitors and 1 more greeting-only check", n, m, runs)
	if m != n+1 {
		t.Fatalf("%d monitors logged %d aborted connections", runs, m-n-1)
	}
	if logLines(t, a.log, "Aborted connection "+strconv.FormatUint(uint64(r.ConnID), 10)+" ") != 0 {
		t.Fatalf("login %d logged as aborted", r.ConnID)
	}

	// Root on a password: every login is refused, the server is up.
	alter := "ALTER USER root@localhost IDENTIFIED VIA mysql_native_password USING PASSWORD('not-for-the-monitor')"
	if out, err := exec.CommandContext(ctx, "mariadb", "--no-defaults", "--socket="+a.socket, "-uroot", "-e", alter).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v: %s", alter, err, out)
	}
	denied := "Access denied for user 'root'@'localhost'"
	d0 := logLines(t, a.log, denied)
	r, err = probe(ctx, a.socket)
	var se *serverError
	if err != nil || r.Outcome != refused || !errors.As(r.Err, &se) || se.Code != 1045 {
		t.Fatalf("login with root on a password: %+v, %v", r, err)
	}
	for i := range runs {
		if err := Handshake(ctx, a.socket); err != nil {
			t.Fatalf("monitor %d with the login refused: %v", i, err)
		}
	}
	m2 := abortedBarrier(t, ctx, a)
	d1 := logLines(t, a.log, denied)
	t.Logf("refused logins: %d -> %d %q lines, aborted connections %d -> %d (the barrier's)", d0, d1, denied, m, m2)
	if d1-d0 != runs+1 {
		t.Fatalf("%d refused logins logged %d %q lines", runs+1, d1-d0, denied)
	}
	if m2 != m+1 {
		t.Fatalf("%d refused logins logged %d aborted connections", runs+1, m2-m-1)
	}
}

// TestHandshakeOverTCPOnlyGreets: over TCP unix_socket cannot work, so
// Handshake reads the greeting and sends nothing.
func TestHandshakeOverTCPOnlyGreets(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan [][]byte, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(got)
			return
		}
		got <- <-fakeServer(c, mariadbGreeting, []byte{okPacket, 0, 0, 2, 0, 0, 0})
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r, err := probe(ctx, ln.Addr().String())
	if err != nil || r.Outcome != notTried || r.ConnID != 4 {
		t.Fatalf("probe over TCP: %+v, %v", r, err)
	}
	if sent := <-got; len(sent) != 0 {
		t.Fatalf("client sent %d packets over TCP", len(sent))
	}
}
