package nova

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/gophercloud/gophercloud/v2"
)

// Error is an API's refusal: Nova's, Placement's or Keystone's answer
// other than success.
type Error struct {
	Op        string // what was asked, e.g. "evacuate server 0f3c... to cmp2"
	Status    int    // the HTTP status
	Message   string // the API's own text (badRequest.message, errors[].detail, error.message), or the body's start
	RequestID string // x-openstack-request-id, for the API's logs
	Code      string // Placement's error code (e.g. placement.concurrent_update), when it sends one
}

func (e *Error) Error() string {
	s := fmt.Sprintf("%s: %d %s", e.Op, e.Status, http.StatusText(e.Status))
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.RequestID != "" {
		s += " (" + e.RequestID + ")"
	}
	return s
}

// Retryable reports whether the same call may succeed later without
// anything else changing: a 5xx but 501 (the API or something before it
// failed), a 429 (rate limited), a 409 that passes (Nova: the server is
// busy with a task, "while it is in task_state ..."; Placement: a
// provider changed under the call, placement.concurrent_update). Other
// refusals need something done first.
func (e *Error) Retryable() bool {
	switch {
	case e.Status >= 500:
		return e.Status != http.StatusNotImplemented
	case e.Status == http.StatusTooManyRequests:
		return true
	case e.Status == http.StatusConflict:
		return strings.Contains(e.Message, "task_state") || e.Code == "placement.concurrent_update"
	}
	return false
}

// IsNotFound reports whether err is an API's 404. For Evacuate that is the
// server or the target host (Message says which).
func IsNotFound(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == http.StatusNotFound
}

// IsServiceInUse reports whether err is Nova refusing an evacuation because
// it still thinks the source host's nova-compute is up ("Compute service
// of cmp1 is still in use."): force the service down first (ForceDown),
// or wait until Nova's service_down_time has passed since its last
// heartbeat.
func IsServiceInUse(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == http.StatusBadRequest &&
		strings.HasPrefix(e.Message, "Compute service of ") && strings.HasSuffix(e.Message, " is still in use.")
}

// IsForceUpRefused reports whether err is Nova refusing ForceDown(false)
// because evacuations from the host are still "done", not "completed":
// that happens when the host's nova-compute starts again and cleans up
// after them.
func IsForceUpRefused(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == http.StatusBadRequest && strings.HasPrefix(e.Message, "Unable to force up host")
}

// apiError turns gophercloud's errors into *Error (an API's answer) or
// wraps them with op (anything else).
func apiError(op string, err error) error {
	if err == nil {
		return nil
	}
	var reauth *gophercloud.ErrUnableToReauthenticate
	if errors.As(err, &reauth) {
		return fmt.Errorf("%s: token refused (%w), and a new login failed: %w", op, apiError("call", reauth.ErrOriginal), apiError("keystone login", reauth.ErrReauth))
	}
	var code gophercloud.ErrUnexpectedResponseCode
	if errors.As(err, &code) {
		return newError(op, code)
	}
	var codep *gophercloud.ErrUnexpectedResponseCode
	if errors.As(err, &codep) {
		return newError(op, *codep)
	}
	return fmt.Errorf("%s: %w", op, err)
}

func newError(op string, r gophercloud.ErrUnexpectedResponseCode) *Error {
	e := &Error{Op: op, Status: r.Actual}
	e.Message, e.Code = errorMessage(r.Body)
	for _, h := range []string{"X-Openstack-Request-Id", "X-Compute-Request-Id", "Openstack-Request-Id"} {
		if id := r.ResponseHeader.Get(h); id != "" {
			e.RequestID = id
			break
		}
	}
	return e
}

// errorMessage finds the API's own text in an error body:
//
//	Nova       {"badRequest": {"code": 400, "message": "..."}} (any one key)
//	Placement  {"errors": [{"status": 404, "code": "...", "title": "...", "detail": "..."}]}
//	Keystone   {"error": {"code": 401, "title": "...", "message": "..."}}
//
// Anything else (a proxy's HTML page) gives the body's first 300 bytes.
func errorMessage(body []byte) (message, code string) {
	var placement struct {
		Errors []struct {
			Code   string `json:"code"`
			Title  string `json:"title"`
			Detail string `json:"detail"`
		} `json:"errors"`
	}
	if json.Unmarshal(body, &placement) == nil && len(placement.Errors) > 0 {
		var msgs []string
		for _, e := range placement.Errors {
			m := placementDetail(e.Title, e.Detail)
			if m != "" {
				msgs = append(msgs, m)
			}
		}
		return strings.Join(msgs, "; "), placement.Errors[0].Code
	}
	var keyed map[string]struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &keyed) == nil && len(keyed) == 1 {
		for _, v := range keyed {
			if v.Message != "" {
				return strings.TrimSpace(v.Message), ""
			}
		}
	}
	s := strings.Join(strings.Fields(string(body)), " ")
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s, ""
}

// placementDetail is a Placement error's text. Its detail is webob's
// explanation of the status, a blank line, then what is wrong, sometimes
// twice ("The resource could not be found.\n\n No resource provider with
// uuid X found : No resource provider with uuid X found  "): what is
// wrong is kept, once; the title when there is no detail.
func placementDetail(title, detail string) string {
	parts := strings.Split(detail, "\n\n")
	for i := len(parts) - 1; i >= 0; i-- {
		if d := strings.Join(strings.Fields(parts[i]), " "); d != "" {
			if a, b, ok := strings.Cut(d, " : "); ok && a == b {
				return a
			}
			return d
		}
	}
	return strings.Join(strings.Fields(title), " ")
}
