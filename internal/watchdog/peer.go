package watchdog

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/haconf/haconf/drbd"
)

// PeerClient reaches the other controller's watchdog endpoint. It
// implements drbd.Member, so the split-brain engine on one node can read
// the peer's evidence and ask it to run its half of a decision.
type PeerClient struct {
	Name    string // the peer's node name
	BaseURL string // e.g. http://192.0.2.12:9750
	HTTP    *http.Client
	// ReadTimeout bounds the read-only calls (default 10s); Apply is
	// bounded by its context only (a preserved copy can take minutes).
	ReadTimeout time.Duration
	// Key signs every request and checks every answer (LoadPeerKey).
	// Without it no request is sent.
	Key []byte
	// now stamps requests (tests).
	now func() time.Time
}

// NodeName implements drbd.Member.
func (p *PeerClient) NodeName() string { return p.Name }

func (p *PeerClient) client() *http.Client {
	if p.HTTP != nil {
		return p.HTTP
	}
	return http.DefaultClient
}

// Evidence implements drbd.Member.
func (p *PeerClient) Evidence(ctx context.Context, resource string) (drbd.NodeEvidence, error) {
	var ev drbd.NodeEvidence
	err := p.do(ctx, http.MethodGet, "/v1/drbd/evidence?resource="+url.QueryEscape(resource), nil, &ev)
	return ev, err
}

// State implements drbd.Member.
func (p *PeerClient) State(ctx context.Context, resource string) (drbd.Resource, error) {
	var r drbd.Resource
	err := p.do(ctx, http.MethodGet, "/v1/drbd/state?resource="+url.QueryEscape(resource), nil, &r)
	return r, err
}

// Apply implements drbd.Member.
func (p *PeerClient) Apply(ctx context.Context, req drbd.PeerRequest) (drbd.PeerResult, error) {
	var res drbd.PeerResult
	err := p.do(ctx, http.MethodPost, "/v1/splitbrain/apply", req, &res)
	return res, err
}

// Incidents lists the peer's incident records.
func (p *PeerClient) Incidents(ctx context.Context) ([]drbd.Incident, error) {
	var out []drbd.Incident
	err := p.do(ctx, http.MethodGet, "/v1/incidents", nil, &out)
	return out, err
}

// apiError is the body of a failed peer API call.
type apiError struct {
	Error string `json:"error"`
	Kind  string `json:"kind,omitempty"`
	// Result carries a partial result (the timeline of a failed Apply).
	Result *drbd.PeerResult `json:"result,omitempty"`
}

var kinds = map[string]error{
	"unknown-resource": drbd.ErrUnknownResource,
	"disagree":         drbd.ErrDisagree,
}

func kindOf(err error) string {
	for k, e := range kinds {
		if errors.Is(err, e) {
			return k
		}
	}
	return ""
}

func (p *PeerClient) do(ctx context.Context, method, path string, in, out any) error {
	if method == http.MethodGet {
		t := p.ReadTimeout
		if t == 0 {
			t = 10 * time.Second
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t)
		defer cancel()
	}
	if len(p.Key) == 0 {
		return fmt.Errorf("peer %s: %w: no peer key to sign the request with", p.Name, ErrPeerAuth)
	}
	var body []byte
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = b
	}
	req, err := http.NewRequestWithContext(ctx, method, p.BaseURL+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	now := time.Now
	if p.now != nil {
		now = p.now
	}
	nonce, err := signRequest(req, p.Key, p.Name, body, now())
	if err != nil {
		return err
	}
	resp, err := p.client().Do(req)
	if err != nil {
		return fmt.Errorf("%w: %s: %v", drbd.ErrPeerUnreachable, p.Name, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("%w: %s: %v", drbd.ErrPeerUnreachable, p.Name, err)
	}
	if !verifyResponse(p.Key, nonce, resp.StatusCode, data, resp.Header.Get(headerSignature)) {
		// A refusal by the peer's authentication is not signed; its
		// message says why (keys differ, clocks apart).
		return fmt.Errorf("peer %s: %s %s: %w: HTTP %d answer not signed with the peer key: %q", p.Name, method, path, ErrPeerAuth, resp.StatusCode, bytes.TrimSpace(head(data, 512)))
	}
	if resp.StatusCode != http.StatusOK {
		var ae apiError
		if json.Unmarshal(data, &ae) != nil || ae.Error == "" {
			return fmt.Errorf("peer %s: %s %s: HTTP %d: %s", p.Name, method, path, resp.StatusCode, bytes.TrimSpace(data))
		}
		if ae.Result != nil {
			if r, ok := out.(*drbd.PeerResult); ok {
				*r = *ae.Result
			}
		}
		if k, ok := kinds[ae.Kind]; ok {
			return fmt.Errorf("peer %s: %w: %s", p.Name, k, ae.Error)
		}
		return fmt.Errorf("peer %s: %s", p.Name, ae.Error)
	}
	return json.Unmarshal(data, out)
}

func head(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}
