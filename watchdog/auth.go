package watchdog

import (
	"bytes"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/haconf/haconf/internal/secretfile"
)

// Peer API authentication.
//
// Every /v1/ request carries an HMAC-SHA256 over the receiving node's
// name, the method, the request URI, a timestamp, a random nonce and the
// body's SHA-256. The receiver refuses a wrong signature, a timestamp more
// than MaxClockSkew off its clock or from before it started, and a nonce it
// already accepted, so a request sniffed on the (plain HTTP) cluster
// network can neither be altered nor replayed, not even after a restart. Every answer carries an HMAC over the request's
// nonce, the status and the body, so the evidence a decision rests on
// cannot be forged either.
//
// The key is derived (HKDF-SHA256, fixed label) from the corosync
// authkey, which both controllers already hold (root, 0400, installed by
// haconf bootstrap): no new secret to distribute, and the derived key is
// useless to corosync and vice versa.

// MaxClockSkew is how far a request's timestamp may be from the
// receiver's clock. The controllers run NTP; the lab nodes read the
// host's clock.
const MaxClockSkew = 30 * time.Second

const (
	peerKeyLabel    = "haconf watchdog peer API v1"
	minSecretBytes  = 32
	headerTimestamp = "X-Haconf-Timestamp"
	headerNonce     = "X-Haconf-Nonce"
	headerSignature = "X-Haconf-Signature"
	authScheme      = "HACONF-HMAC-SHA256"
)

// maxPeerBody bounds a peer request's body. The only request with a body
// is the apply call's splitbrain.PeerRequest: the decision and both nodes'
// evidence, about 3 KiB, some 20 KiB at worst when every error in the
// evidence carries the 4 KiB of stderr the runner keeps
// (TestPeerRequestSize). 64 KiB leaves room and bounds what a client
// without the key makes this node read and hash.
const maxPeerBody = 64 << 10

// ErrPeerAuth means a peer request or answer was not authenticated: the
// two nodes' keys differ, their clocks are too far apart, or something
// else on the network sent or changed it.
var ErrPeerAuth = errors.New("peer authentication failed")

// LoadPeerKey reads the shared secret at path and derives the peer key
// from it. It refuses a file that group or others can read, and never
// puts the secret in an error.
func LoadPeerKey(path string) ([]byte, error) {
	secret, err := secretfile.Read(path, 64<<10, 0o400)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("peer key: %w (the watchdogs sign peer requests with a key derived from the corosync authkey that haconf bootstrap installs; watchdog.peer_key_file names another file)", err)
	}
	if err != nil {
		return nil, fmt.Errorf("peer key: %w", err)
	}
	if len(secret) < minSecretBytes {
		return nil, fmt.Errorf("peer key: %s holds %d bytes, want at least %d random bytes", path, len(secret), minSecretBytes)
	}
	return DerivePeerKey(secret)
}

// minTokenBytes is the shortest bearer token LoadToken accepts.
const minTokenBytes = 16

// LoadToken reads the bearer token /status and /metrics require from
// path, as Prometheus's credentials_file is read: the file's content
// without surrounding white space. Like LoadPeerKey it refuses a file
// that group or others can read, and never puts the token in an error.
func LoadToken(path string) ([]byte, error) {
	b, err := secretfile.Read(path, 4<<10, 0o600)
	if err != nil {
		return nil, fmt.Errorf("watchdog token: %w", err)
	}
	tok := bytes.TrimSpace(b)
	if len(tok) < minTokenBytes || bytes.ContainsFunc(tok, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return nil, fmt.Errorf("watchdog token: %s must hold one token of at least %d printable characters without spaces (e.g. openssl rand -hex 32)", path, minTokenBytes)
	}
	return tok, nil
}

// DerivePeerKey derives the peer API key from the shared secret.
func DerivePeerKey(secret []byte) ([]byte, error) {
	if len(secret) < minSecretBytes {
		return nil, fmt.Errorf("peer key: secret has %d bytes, want at least %d", len(secret), minSecretBytes)
	}
	return hkdf.Key(sha256.New, secret, nil, peerKeyLabel, sha256.Size)
}

// requestMAC is the signature of a request to node; uri is the path and
// query as url.URL.RequestURI gives them on both sides. No field contains
// a newline: node names are host names, uri is escaped, ts is decimal and
// nonce hex.
func requestMAC(key []byte, node, method, uri, ts, nonce string, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	fmt.Fprintf(m, "haconf peer request v1\n%s\n%s\n%s\n%s\n%s\n%x", node, method, uri, ts, nonce, sha256.Sum256(body))
	return m.Sum(nil)
}

// responseMAC is the signature of an answer to the request with nonce.
func responseMAC(key []byte, nonce string, status int, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	fmt.Fprintf(m, "haconf peer response v1\n%s\n%d\n%x", nonce, status, sha256.Sum256(body))
	return m.Sum(nil)
}

// signRequest adds the authentication headers for a request to node and
// returns its nonce, which the answer's signature covers.
func signRequest(req *http.Request, key []byte, node string, body []byte, now time.Time) (string, error) {
	n := make([]byte, 16)
	if _, err := rand.Read(n); err != nil {
		return "", err
	}
	nonce, ts := hex.EncodeToString(n), strconv.FormatInt(now.Unix(), 10)
	req.Header.Set(headerTimestamp, ts)
	req.Header.Set(headerNonce, nonce)
	req.Header.Set(headerSignature, hex.EncodeToString(requestMAC(key, node, req.Method, req.URL.RequestURI(), ts, nonce, body)))
	return nonce, nil
}

// verifyResponse checks the answer to the request with nonce.
func verifyResponse(key []byte, nonce string, status int, body []byte, sig string) bool {
	got, err := hex.DecodeString(sig)
	return err == nil && hmac.Equal(got, responseMAC(key, nonce, status, body))
}

// peerAuth authenticates requests to the /v1/ routes and signs the answers.
type peerAuth struct {
	key  []byte
	node string // this node's name, which requests to it are signed for
	log  *slog.Logger
	now  func() time.Time
	// started is when seen began: requests signed before it are refused.
	started time.Time

	mu   sync.Mutex
	seen map[string]time.Time // accepted nonces -> when their timestamp expires
}

// newPeerAuth starts the nonce cache of a process's peer API.
func newPeerAuth(key []byte, node string, log *slog.Logger, now func() time.Time) *peerAuth {
	return &peerAuth{key: key, node: node, log: log, now: now, started: now()}
}

// kindRestarted marks the refusal of a request signed before the
// receiving watchdog started. The client signs it again a second later
// (PeerClient.do): the refusal is part of the protocol, not an error.
const kindRestarted = "restarted"

// rejection is why a request was refused; reason is a constant.
type rejection struct {
	code   int
	reason string
	kind   string // for the client, in apiError.Kind
	attrs  []any
}

func (a *peerAuth) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, rej := a.verify(w, r)
		if rej != nil {
			attrs := append([]any{"remote", r.RemoteAddr, "method", r.Method, "path", r.URL.Path, "reason", rej.reason}, rej.attrs...)
			a.log.Warn("peer request rejected", attrs...)
			switch rej.code {
			case http.StatusUnauthorized:
				w.Header().Set("WWW-Authenticate", authScheme)
			case http.StatusRequestEntityTooLarge:
				// Not worth reading the rest to keep the connection.
				w.Header().Set("Connection", "close")
			}
			writeRefusal(w, rej.code, apiError{Error: "peer request not authenticated: " + rej.reason, Kind: rej.kind})
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		rec := &recorder{conn: w, header: w.Header(), code: http.StatusOK}
		next.ServeHTTP(rec, r)
		w.Header().Set(headerSignature, hex.EncodeToString(responseMAC(a.key, r.Header.Get(headerNonce), rec.code, rec.body.Bytes())))
		w.WriteHeader(rec.code)
		_, _ = w.Write(rec.body.Bytes())
	})
}

// verify checks a request's headers, then reads and checks its body. What
// costs nothing is checked first: a request without the headers, with a
// stale timestamp or with a body too large is refused before a byte of its
// body is read.
func (a *peerAuth) verify(w http.ResponseWriter, r *http.Request) ([]byte, *rejection) {
	if len(a.key) == 0 {
		return nil, &rejection{code: http.StatusUnauthorized, reason: "this node has no peer key"}
	}
	ts, nonce, sig := r.Header.Get(headerTimestamp), r.Header.Get(headerNonce), r.Header.Get(headerSignature)
	if ts == "" || nonce == "" || sig == "" {
		return nil, &rejection{code: http.StatusUnauthorized, reason: "missing signature headers"}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || strconv.FormatInt(sec, 10) != ts {
		return nil, &rejection{code: http.StatusUnauthorized, reason: "malformed timestamp"}
	}
	if n, err := hex.DecodeString(nonce); err != nil || len(n) != 16 || hex.EncodeToString(n) != nonce {
		return nil, &rejection{code: http.StatusUnauthorized, reason: "malformed nonce"}
	}
	now := a.now()
	sent := time.Unix(sec, 0)
	if skew := now.Sub(sent); skew > MaxClockSkew || skew < -MaxClockSkew {
		return nil, &rejection{code: http.StatusUnauthorized, reason: "timestamp too far from this node's clock",
			attrs: []any{"skew", skew.Round(time.Second).String(), "max_skew", MaxClockSkew.String()}}
	}
	// The nonce cache lives in memory, so it does not know the requests
	// accepted before this process started: within MaxClockSkew of its
	// timestamp such a request, captured on the network, would be accepted
	// again after a restart. So a request must be signed after the cache
	// began. With the clocks in step (NTP) no request from before a
	// restart passes; a peer whose clock is d ahead leaves those of the
	// last d seconds before it replayable once, and one whose clock is
	// behind finds its requests refused for d seconds after it. Timestamps
	// are whole seconds: a fresh request signed in the second the cache
	// began is refused as well, and the client signs it again a second
	// later. Persisting the cache instead would mean a synced write per
	// accepted request, and a state file whose loss reopens the hole.
	if sent.Before(a.started) {
		return nil, &rejection{code: http.StatusUnauthorized, reason: "signed before this watchdog started", kind: kindRestarted,
			attrs: []any{"signed", sent.UTC().Format(time.RFC3339), "started", a.started.UTC().Format(time.RFC3339Nano)}}
	}
	tooLarge := &rejection{code: http.StatusRequestEntityTooLarge, reason: "request body too large", attrs: []any{"max_bytes", maxPeerBody}}
	if r.ContentLength > maxPeerBody {
		return nil, tooLarge
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxPeerBody))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return nil, tooLarge
	}
	if err != nil {
		return nil, &rejection{code: http.StatusBadRequest, reason: "request body unreadable"}
	}
	got, err := hex.DecodeString(sig)
	if err != nil || !hmac.Equal(got, requestMAC(a.key, a.node, r.Method, r.URL.RequestURI(), ts, nonce, body)) {
		return nil, &rejection{code: http.StatusUnauthorized, reason: "bad signature"}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.seen == nil {
		a.seen = map[string]time.Time{}
	}
	for n, exp := range a.seen {
		if now.After(exp) {
			delete(a.seen, n)
		}
	}
	if _, dup := a.seen[nonce]; dup {
		return nil, &rejection{code: http.StatusUnauthorized, reason: "replayed request"}
	}
	// After sent+MaxClockSkew the timestamp check refuses the nonce anyway.
	a.seen[nonce] = sent.Add(MaxClockSkew)
	return body, nil
}

// recorder holds an answer until its signature is known.
type recorder struct {
	conn   http.ResponseWriter // the connection's writer, for Unwrap
	header http.Header
	code   int
	wrote  bool
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(code int) {
	if !r.wrote {
		r.code, r.wrote = code, true
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	r.wrote = true
	return r.body.Write(b)
}

// Unwrap gives http.ResponseController the connection's writer.
func (r *recorder) Unwrap() http.ResponseWriter { return r.conn }
