package lab

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/haconf/haconf/internal/runner"
)

// ExecRequest is what `haconf-lab exec` sends to a node's agent.
type ExecRequest struct {
	Argv    []string `json:"argv"`
	Stdin   []byte   `json:"stdin,omitempty"`
	Timeout string   `json:"timeout,omitempty"` // Go duration; default 2m
}

// ExecResult is the agent's answer. ExitCode is 127 when the command was
// not found and -1 when it did not exit normally (killed, timed out).
type ExecResult struct {
	Node     string `json:"node"`
	Stdout   []byte `json:"stdout"`
	Stderr   []byte `json:"stderr"`
	ExitCode int    `json:"exit_code"`
	Error    string `json:"error,omitempty"`
}

// Agent is the exec service that runs in each node (`haconf-lab agent`),
// reached over the node's control link.
type Agent struct {
	Node  string
	Token string
	Log   *slog.Logger
}

const maxRequest = 16 << 20

// Handler serves POST /v1/exec and GET /v1/ping, both behind the token.
func (a *Agent) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/ping", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"node": a.Node})
	})
	mux.HandleFunc("POST /v1/exec", func(w http.ResponseWriter, r *http.Request) {
		var req ExecRequest
		if err := json.NewDecoder(io.LimitReader(r.Body, maxRequest)).Decode(&req); err != nil || len(req.Argv) == 0 {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "want JSON {argv: [...]}"})
			return
		}
		writeJSON(w, http.StatusOK, a.exec(r.Context(), req))
	})
	return requireToken(a.Token, mux)
}

// exec runs req in its own session, so that daemons it starts (corosync,
// pacemakerd) survive the request. The agent is the one place in a node
// that starts arbitrary commands and must return their stdout and stderr
// in full, which internal/runner does not do.
func (a *Agent) exec(ctx context.Context, req ExecRequest) ExecResult {
	timeout := 2 * time.Minute
	if d, err := time.ParseDuration(req.Timeout); err == nil && d > 0 {
		timeout = d
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, req.Argv[0], req.Argv[1:]...)
	cmd.Env = []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME=/root", "LC_ALL=C", "TERM=dumb",
	}
	cmd.Dir = "/"
	cmd.Stdin = bytes.NewReader(req.Stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	// A daemon that keeps our pipes open must not hold the answer back.
	cmd.WaitDelay = 2 * time.Second
	start := time.Now()
	err := cmd.Run()
	res := ExecResult{Node: a.Node, Stdout: stdout.Bytes(), Stderr: stderr.Bytes()}
	var ee *exec.ExitError
	switch {
	case err == nil, errors.Is(err, exec.ErrWaitDelay):
		res.ExitCode = 0
	case errors.As(err, &ee):
		res.ExitCode = ee.ExitCode()
		if ctx.Err() != nil {
			res.Error = fmt.Sprintf("timed out after %s", timeout)
		}
	case errors.Is(err, exec.ErrNotFound), errors.Is(err, fs.ErrNotExist):
		res.ExitCode = 127 // as a shell reports it
		res.Stderr = append(res.Stderr, []byte(err.Error()+"\n")...)
	default:
		res.ExitCode = -1
		res.Error = err.Error()
	}
	a.Log.Debug("exec", "argv", req.Argv, "exit", res.ExitCode, "took", time.Since(start).Round(time.Millisecond))
	return res
}

// Serve runs the agent on addr until ctx ends.
func (a *Agent) Serve(ctx context.Context, addr string) error {
	return serveHTTP(ctx, addr, a.Handler(), a.Log)
}

func serveHTTP(ctx context.Context, addr string, h http.Handler, log *slog.Logger) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	log.Info("listening", "addr", addr)
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func requireToken(token string, next http.Handler) http.Handler {
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := []byte(r.Header.Get("Authorization"))
		if token == "" || subtle.ConstantTimeCompare(got, want) != 1 {
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "bad or missing token"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// ReadTokenFile reads a lab token (one line, mode 0600).
func ReadTokenFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	t := strings.TrimSpace(string(b))
	if t == "" {
		return "", fmt.Errorf("%s: empty token", path)
	}
	return t, nil
}

// Client talks to the nodes' agents and to the fence daemon. It only ever
// dials addresses inside the lab's own networks, and ignores proxy settings.
type Client struct {
	Token string
	HTTP  *http.Client
}

// NewClient returns a client that authenticates with token.
func NewClient(token string) *Client {
	d := &net.Dialer{Timeout: 3 * time.Second}
	tr := &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			ap, err := netip.ParseAddrPort(addr)
			if err != nil || !(MgmtPrefix.Contains(ap.Addr()) || StoragePrefix.Contains(ap.Addr()) || ControlPrefix.Contains(ap.Addr())) {
				return nil, fmt.Errorf("lab client: refusing to dial %s: not a lab address", addr)
			}
			return d.DialContext(ctx, network, addr)
		},
		DisableKeepAlives: true,
	}
	return &Client{Token: token, HTTP: &http.Client{Transport: tr}}
}

// Client returns a client for this lab's token.
func (l *Lab) Client() (*Client, error) {
	t, err := l.Token()
	if err != nil {
		return nil, err
	}
	return NewClient(t), nil
}

func (c *Client) do(ctx context.Context, method, url string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %s: %s", method, url, resp.Status, strings.TrimSpace(string(b)))
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// Ping checks that node's agent answers.
func (c *Client) Ping(ctx context.Context, node string) error {
	n, err := NodeByName(node)
	if err != nil {
		return err
	}
	var got map[string]string
	if err := c.do(ctx, http.MethodGet, n.AgentURL()+"/v1/ping", nil, &got); err != nil {
		return err
	}
	if got["node"] != n.Name {
		return fmt.Errorf("agent at %s says it is %q, not %s", n.AgentURL(), got["node"], n.Name)
	}
	return nil
}

// Exec runs req in node. A command that ran and exited non-zero is not an
// error: look at ExitCode.
func (c *Client) Exec(ctx context.Context, node string, req ExecRequest) (ExecResult, error) {
	n, err := NodeByName(node)
	if err != nil {
		return ExecResult{}, err
	}
	if req.Timeout == "" {
		if dl, ok := ctx.Deadline(); ok {
			req.Timeout = time.Until(dl).Round(time.Second).String()
		}
	}
	var res ExecResult
	if err := c.do(ctx, http.MethodPost, n.AgentURL()+"/v1/exec", req, &res); err != nil {
		return ExecResult{}, fmt.Errorf("exec in %s: %w", n.Name, err)
	}
	return res, nil
}

// Exec runs argv in node and returns what it printed and its exit code.
func (l *Lab) Exec(ctx context.Context, node string, argv ...string) (ExecResult, error) {
	c, err := l.Client()
	if err != nil {
		return ExecResult{}, err
	}
	return c.Exec(ctx, node, ExecRequest{Argv: argv})
}

// NodeRunner runs commands in one lab node through its exec agent. It is
// the lab's counterpart of runner.Exec - a lab node is a command runner -
// so the drivers (pacemaker.Cluster, ...) run in a node exactly as they run
// on a controller. A command that exits non-zero fails with a
// *runner.Error carrying argv, the exit code and the end of stderr.
type NodeRunner struct {
	Client *Client
	Node   string
}

// Runner returns the runner for node.
func (c *Client) Runner(node string) NodeRunner { return NodeRunner{Client: c, Node: node} }

// Run implements pacemaker.Runner and runner.Runner. Without a deadline on
// ctx the agent's default timeout (2 minutes) applies.
func (r NodeRunner) Run(ctx context.Context, name string, args ...string) ([]byte, error) {
	argv := append([]string{name}, args...)
	res, err := r.Client.Exec(ctx, r.Node, ExecRequest{Argv: argv})
	if err != nil {
		return nil, &runner.Error{Argv: argv, ExitCode: -1, Err: err}
	}
	if res.ExitCode == 0 {
		return res.Stdout, nil
	}
	e := &runner.Error{Argv: argv, ExitCode: res.ExitCode, Stderr: tail(res.Stderr, 4096), Err: fmt.Errorf("%s: exit status %d", r.Node, res.ExitCode)}
	if res.ExitCode < 0 {
		e.Err = fmt.Errorf("%s: %s", r.Node, res.Error)
	}
	return res.Stdout, e
}

// tail is the last max bytes of b, as runner keeps of stderr.
func tail(b []byte, max int) string {
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return string(b)
}
