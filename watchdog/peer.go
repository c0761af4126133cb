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
	"github.com/haconf/haconf/splitbrain"
)

// PeerClient reaches the other controller's watchdog endpoint. It
// implements splitbrain.Member, so the split-brain engine on one node can read
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

// NodeName implements splitbrain.Member.
func (p *PeerClient) NodeName() string { return p.Name }

func (p *PeerClient) client() *http.Client {
	if p.HTTP != nil {
		return p.HTTP
	}
	return http.DefaultClient
}

// Evidence implements splitbrain.Member.
func (p *PeerClient) Evidence(ctx context.Context, resource string) (splitbrain.NodeEvidence, error) {
	var ev splitbrain.NodeEvidence
	err := p.do(ctx, http.MethodGet, "/v1/drbd/evidence?resource="+url.QueryEscape(resource), nil, &ev)
	return ev, err
}

// State implements splitbrain.Member.
func (p *PeerClient) State(ctx context.Context, resource string) (drbd.Resource, error) {
	var r drbd.Resource
	err := p.do(ctx, http.MethodGet, "/v1/drbd/state?resource="+url.QueryEscape(resource), nil, &r)
	return r, err
}

// Apply implements splitbrain.Member.
func (p *PeerClient) Apply(ctx context.Context, req splitbrain.PeerRequest) (splitbrain.PeerResult, error) {
	var res splitbrain.PeerResult
	err := p.do(ctx, http.MethodPost, "/v1/splitbrain/apply", req, &res)
	return res, err
}

// Incidents lists the peer's incident records.
func (p *PeerClient) Incidents(ctx context.Context) ([]splitbrain.Incident, error) {
	var out []splitbrain.Incident
	err := p.do(ctx, http.MethodGet, "/v1/incidents", nil, &out)
	return out, err
}

// apiError is the body of a failed peer API call.
type apiError struct {
	Error string `json:"error"`
	Kind  string `json:"kind,omitempty"`
	// Result carries a partial result (the timeline of a failed Apply).
	Result *splitbrain.PeerResult `json:"result,omitempty"`
}

var kinds = map[string]error{
	"unknown-resource": drbd.ErrUnknownResource,
	"disagree":         splitbrain.ErrDisagree,
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
	status, data, signed, err := p.roundTrip(ctx, method, path, body)
	if err == nil && !signed && refusedAsRestarted(status, data) {
		// The peer started in the second this request was signed in and
		// cannot tell it from one sent before it started: sign it again
		// in the next second.
		now := p.clock()
		select {
		case <-time.After(now.Truncate(time.Second).Add(time.Second).Sub(now)):
		case <-ctx.Done():
			return fmt.Errorf("%w: %s: %v", splitbrain.ErrPeerUnreachable, p.Name, ctx.Err())
		}
		status, data, signed, err = p.roundTrip(ctx, method, path, body)
	}
	if err != nil {
		return err
	}
	if !signed {
		// A refusal by the peer's authentication is not signed; its
		// message says why (keys differ, clocks apart).
		return fmt.Errorf("peer %s: %s %s: %w: HTTP %d answer not signed with the peer key: %q", p.Name, method, path, ErrPeerAuth, status, bytes.TrimSpace(head(data, 512)))
	}
	if status != http.StatusOK {
		var ae apiError
		if json.Unmarshal(data, &ae) != nil || ae.Error == "" {
			return fmt.Errorf("peer %s: %s %s: HTTP %d: %s", p.Name, method, path, status, bytes.TrimSpace(data))
		}
		if ae.Result != nil {
			if r, ok := out.(*splitbrain.PeerResult); ok {
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

// roundTrip signs and sends one request and reads the answer; signed
// says whether the answer carries the peer's signature for it.
func (p *PeerClient) roundTrip(ctx context.Context, method, path string, body []byte) (status int, data []byte, signed bool, err error) {
	req, err := http.NewRequestWithContext(ctx, method, p.BaseURL+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, false, err
	}
	req.Header.Set("Content-Type", "application/json")
	nonce, err := signRequest(req, p.Key, p.Name, body, p.clock())
	if err != nil {
		return 0, nil, false, err
	}
	resp, err := p.client().Do(req)
	if err != nil {
		return 0, nil, false, fmt.Errorf("%w: %s: %v", splitbrain.ErrPeerUnreachable, p.Name, err)
	}
	defer resp.Body.Close()
	data, err = io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return 0, nil, false, fmt.Errorf("%w: %s: %v", splitbrain.ErrPeerUnreachable, p.Name, err)
	}
	return resp.StatusCode, data, verifyResponse(p.Key, nonce, resp.StatusCode, data, resp.Header.Get(headerSignature)), nil
}

// refusedAsRestarted reports whether an (unsigned) answer refuses a
// request as signed before the peer started.
func refusedAsRestarted(status int, data []byte) bool {
	var ae apiError
	return status == http.StatusUnauthorized && json.Unmarshal(data, &ae) == nil && ae.Kind == kindRestarted
}

func (p *PeerClient) clock() time.Time {
	if p.now != nil {
		return p.now()
	}
	return time.Now()
}

func head(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}
