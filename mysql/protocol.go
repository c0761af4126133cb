package mysql

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"
)

// The monitor's connection phase of the MariaDB/MySQL client/server
// protocol (https://mariadb.com/kb/en/connection/). A client that reads
// the greeting and hangs up makes MariaDB (log_warnings >= 2, the 10.11
// default) log "Aborted connection ... (This connection closed normally
// without authentication)" on every monitor. On the unix socket the
// monitor therefore logs in as root, which haconf's bootstrap
// (mariadb-install-db --auth-root-authentication-method=socket) lets
// authenticate by the socket's peer credentials, and sends COM_QUIT: no
// password, no client program, nothing in the error log.

// Capability flags (int<4> client/server capabilities). The monitor sends
// exactly loginCaps and logs in only when the server has all of them. It
// leaves out bit 0 (CLIENT_MYSQL), so MariaDB reads the 4 bytes of
// extended capabilities, which are zero, from the response's filler.
const (
	clientProtocol41 = 1 << 9
	clientSecureConn = 1 << 15
	clientPluginAuth = 1 << 19

	loginCaps = clientProtocol41 | clientSecureConn | clientPluginAuth
)

// Packet headers and commands.
const (
	greetingV10  = 10
	okPacket     = 0x00
	authMoreData = 0x01
	authSwitch   = 0xfe
	errPacket    = 0xff
	comQuit      = 0x01
)

const (
	// loginUser is the account the monitor logs in as (unix_socket).
	loginUser = "root"
	// loginTimeout bounds the login after the greeting, so a server that
	// greets but never answers cannot hold the monitor to its deadline.
	loginTimeout = 5 * time.Second
	// maxPacket bounds what the monitor reads; connection-phase packets
	// are small, and a stranger on the port must not make us allocate.
	maxPacket = 1 << 16
)

// Handshake connects to a MariaDB/MySQL unix socket (or host:port) and
// reads the server's greeting: proof the server accepts connections. An
// error packet instead of the greeting (e.g. too many connections) also
// proves the server is up.
//
// On a unix socket it then logs in as root without a secret and quits,
// so the server logs nothing. Over TCP it only reads the greeting (and the
// server logs an aborted connection): unix_socket authentication needs the
// socket's peer credentials, so a login over TCP would only trade that
// warning for an "Access denied" one.
//
// Tested against MariaDB 10.11; with MySQL 8.0 (root by auth_socket, or
// caching_sha2_password) the exchange follows the same documented packets
// but has not been run.
//
// The login does not change the verdict: whether it ends in OK, in an
// ERR (root not socket-authenticated: the server answered) or breaks
// off, the greeting has already shown the server is up.
func Handshake(ctx context.Context, addr string) error {
	_, err := probe(ctx, addr)
	return err
}

// loginOutcome is how the monitor's login ended.
type loginOutcome int

const (
	notTried  loginOutcome = iota // TCP, an error greeting, or a server without plugin auth
	loggedIn                      // OK; COM_QUIT sent
	refused                       // ERR: the server answered and denied the login
	abandoned                     // the exchange broke off or wanted what we do not send
)

func (o loginOutcome) String() string {
	return [...]string{"not tried", "logged in", "refused", "abandoned"}[o]
}

// loginResult is what probe saw after the greeting.
type loginResult struct {
	ConnID  uint32 // the server's connection id (from the greeting)
	Outcome loginOutcome
	Err     error // why the login was refused or abandoned
}

// probe is Handshake with the login's result. Its error is about the
// greeting only.
func probe(ctx context.Context, addr string) (loginResult, error) {
	network := "unix"
	if !strings.HasPrefix(addr, "/") {
		network = "tcp"
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return loginResult{}, err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	_, p, err := readPacket(c)
	if err != nil {
		return loginResult{}, fmt.Errorf("read greeting: %w", err)
	}
	switch {
	case len(p) > 0 && p[0] == errPacket:
		return loginResult{Err: parseErr(p)}, nil
	case len(p) == 0:
		return loginResult{}, errors.New("empty greeting")
	case p[0] != greetingV10:
		return loginResult{}, fmt.Errorf("unexpected greeting byte %#x", p[0])
	}
	g, err := parseGreeting(p)
	if err != nil {
		return loginResult{Err: err}, nil
	}
	if network != "unix" || g.Caps&loginCaps != loginCaps {
		return loginResult{ConnID: g.ConnID}, nil
	}
	dl := time.Now().Add(loginTimeout)
	if cdl, ok := ctx.Deadline(); ok && cdl.Before(dl) {
		dl = cdl
	}
	c.SetDeadline(dl)
	out, err := login(c, g, loginUser)
	return loginResult{ConnID: g.ConnID, Outcome: out, Err: err}, nil
}

// login answers greeting g on c as user with empty auth data and follows
// the server to OK (then sends COM_QUIT) or ERR. Every auth switch is
// answered with empty data too: for unix_socket that is the protocol's
// answer (the server takes the peer's uid from the socket and reads
// nothing), for a plugin that wants a secret it is a failed attempt, and
// MariaDB then tries the account's next plugin ("IDENTIFIED VIA ed25519 OR
// unix_socket" ends in OK) or answers ERR.
//
// What MariaDB 10.11 (log_warnings=2) logs on each path:
//   - OK then COM_QUIT: nothing.
//   - ERR (root is not socket-authenticated on this install): "[Warning]
//     Access denied for user 'root'@'localhost' (using password: NO)" on
//     every monitor. The server ends the connection itself, so no
//     "Aborted connection" follows. haconf's bootstrap makes root
//     socket-authenticated, so this warning points at a changed root
//     account, which operators should see.
//   - abandoned (more auth data we cannot give, a timeout, a broken
//     connection): we hang up mid-authentication and the server may log
//     "Aborted connection", as it did for every greeting-only check.
func login(c io.ReadWriter, g greeting, user string) (loginOutcome, error) {
	if err := writePacket(c, 1, handshakeResponse(user, g.Plugin)); err != nil {
		return abandoned, err
	}
	// MariaDB switches once per plugin of an "IDENTIFIED VIA a OR b OR c"
	// account; a server that keeps asking gets no more rounds.
	for range 4 {
		seq, p, err := readPacket(c)
		if err != nil {
			return abandoned, err
		}
		if len(p) == 0 {
			return abandoned, errors.New("empty packet during authentication")
		}
		switch p[0] {
		case okPacket:
			if err := writePacket(c, 0, []byte{comQuit}); err != nil {
				return abandoned, fmt.Errorf("send COM_QUIT: %w", err)
			}
			return loggedIn, nil
		case errPacket:
			return refused, parseErr(p)
		case authSwitch:
			if err := writePacket(c, seq+1, nil); err != nil {
				return abandoned, err
			}
		case authMoreData:
			// e.g. caching_sha2_password asking for the full password.
			return abandoned, fmt.Errorf("server wants more authentication data (%d bytes)", len(p)-1)
		default:
			return abandoned, fmt.Errorf("unexpected packet %#x during authentication", p[0])
		}
	}
	return abandoned, errors.New("too many authentication rounds")
}

// greeting is the part of the Initial Handshake Packet (protocol 10) the
// monitor uses.
type greeting struct {
	Version string
	ConnID  uint32
	Caps    uint32
	Plugin  string // auth plugin the server proposes
}

// parseGreeting decodes an Initial Handshake Packet's payload.
func parseGreeting(p []byte) (greeting, error) {
	var g greeting
	if len(p) == 0 || p[0] != greetingV10 {
		return g, errors.New("greeting: not protocol version 10")
	}
	p = p[1:]
	v, rest, ok := bytes.Cut(p, []byte{0})
	// conn id 4, scramble 8, reserved 1, capabilities 2
	if !ok || len(rest) < 15 {
		return g, errors.New("greeting: truncated")
	}
	g.Version = string(v)
	g.ConnID = binary.LittleEndian.Uint32(rest)
	g.Caps = uint32(binary.LittleEndian.Uint16(rest[13:]))
	rest = rest[15:]
	// collation 1, status 2, capabilities 2, auth data length 1,
	// filler 6, MariaDB capabilities or filler 4
	if len(rest) < 16 {
		return g, nil // a pre-4.1 server: capabilities end here
	}
	g.Caps |= uint32(binary.LittleEndian.Uint16(rest[3:])) << 16
	authLen := int(rest[5])
	rest = rest[16:]
	if g.Caps&clientSecureConn != 0 {
		n := max(12, authLen-9) + 1 // scramble part 2 and its NUL
		if len(rest) < n {
			return g, errors.New("greeting: truncated scramble")
		}
		rest = rest[n:]
	}
	if g.Caps&clientPluginAuth != 0 {
		// Some MySQL versions leave out the plugin name's NUL.
		name, _, _ := bytes.Cut(rest, []byte{0})
		g.Plugin = string(name)
	}
	return g, nil
}

// handshakeResponse is a HandshakeResponse41 for user with empty auth
// data, no database, no TLS and no connection attributes.
func handshakeResponse(user, plugin string) []byte {
	b := binary.LittleEndian.AppendUint32(nil, loginCaps)
	b = binary.LittleEndian.AppendUint32(b, 1<<24) // max packet size
	b = append(b, 45)                              // utf8mb4_general_ci
	b = append(b, make([]byte, 19+4)...)           // reserved, MariaDB extended capabilities (none)
	b = append(b, user...)
	b = append(b, 0)
	b = append(b, 0) // auth response length: empty
	b = append(b, plugin...)
	return append(b, 0)
}

// serverError is an ERR packet.
type serverError struct {
	Code    uint16
	State   string
	Message string
}

func (e *serverError) Error() string {
	if e.State == "" {
		return fmt.Sprintf("server error %d: %s", e.Code, e.Message)
	}
	return fmt.Sprintf("server error %d (%s): %s", e.Code, e.State, e.Message)
}

// parseErr decodes an ERR packet's payload: 0xff, code, then "#" and the
// SQL state when the server knows the client speaks protocol 4.1 (not in
// an error it sends instead of the greeting), then the message.
func parseErr(p []byte) *serverError {
	if len(p) < 3 {
		return &serverError{Message: "truncated error packet"}
	}
	e := &serverError{Code: binary.LittleEndian.Uint16(p[1:])}
	p = p[3:]
	if len(p) >= 6 && p[0] == '#' {
		e.State, p = string(p[1:6]), p[6:]
	}
	e.Message = string(p)
	return e
}

// readPacket reads one packet: int<3> length, int<1> sequence id, payload.
func readPacket(r io.Reader) (seq byte, payload []byte, err error) {
	var h [4]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, nil, err
	}
	n := int(h[0]) | int(h[1])<<8 | int(h[2])<<16
	if n > maxPacket {
		return 0, nil, fmt.Errorf("packet of %d bytes, more than a connection-phase packet", n)
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(r, payload); err != nil {
		return 0, nil, err
	}
	return h[3], payload, nil
}

// writePacket writes payload (shorter than 16 MiB) as one packet.
func writePacket(w io.Writer, seq byte, payload []byte) error {
	n := len(payload)
	b := append([]byte{byte(n), byte(n >> 8), byte(n >> 16), seq}, payload...)
	_, err := w.Write(b)
	return err
}
