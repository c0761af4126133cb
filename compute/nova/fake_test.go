package nova

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The compute lab's endpoints, as recorded (testdata/capture.sh), and the
// path each gets on the fake cloud's one server.
var labEndpoints = []struct{ recorded, prefix string }{
	{"http://10.251.0.1:5000", "/identity"},
	{"http://10.251.0.1:8774", "/compute"},
	{"http://10.251.0.1:8778", "/placement"},
}

// recording is one call to the compute lab and its answer, from testdata:
// NAME.req (method and URL, then the body sent), NAME.http (status line
// and headers), NAME.json (the body).
type recording struct {
	name         string
	method, path string // path with the fake's prefix, and its query as recorded
	query        url.Values
	reqBody      []byte
	status       int
	header       http.Header
	body         []byte
}

// readRecording reads testdata/NAME.*; the lab's URLs in it are turned
// into the fake server's (base).
func readRecording(t *testing.T, name, base string) recording {
	t.Helper()
	read := func(ext string) []byte {
		b, err := os.ReadFile(filepath.Join("testdata", name+ext))
		if err != nil {
			t.Fatal(err)
		}
		return bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n"))
	}
	r := recording{name: name}
	req := string(read(".req"))
	line, body, _ := strings.Cut(req, "\n")
	method, raw, _ := strings.Cut(line, " ")
	u, err := url.Parse(localURL(raw, ""))
	if err != nil {
		t.Fatalf("%s.req: %v", name, err)
	}
	r.method, r.path, r.query, r.reqBody = method, u.Path, u.Query(), bytes.TrimSpace([]byte(body))

	tp := textproto.NewReader(bufio.NewReader(bytes.NewReader(read(".http"))))
	status, err := tp.ReadLine()
	if err != nil {
		t.Fatalf("%s.http: %v", name, err)
	}
	f := strings.Fields(status) // HTTP/1.1 200 OK
	if len(f) < 2 {
		t.Fatalf("%s.http: status line %q", name, status)
	}
	if r.status, err = strconv.Atoi(f[1]); err != nil {
		t.Fatalf("%s.http: status line %q", name, status)
	}
	mh, err := tp.ReadMIMEHeader()
	if err != nil && err != io.EOF {
		t.Fatalf("%s.http: %v", name, err)
	}
	r.header = http.Header(mh)
	r.body = []byte(localURL(string(read(".json")), base))
	return r
}

// recordedID is the last element of recording name's path: the server or
// service it was about.
func recordedID(t *testing.T, name string) string {
	t.Helper()
	p := strings.TrimSuffix(readRecording(t, name, "").path, "/action")
	return p[strings.LastIndex(p, "/")+1:]
}

// localURL turns the lab's endpoint URLs in s into base + prefix.
func localURL(s, base string) string {
	for _, e := range labEndpoints {
		s = strings.ReplaceAll(s, e.recorded, base+e.prefix)
	}
	return s
}

// seen is a request the fake cloud received.
type seen struct {
	Method, Path string
	Query        url.Values
	Header       http.Header
	Body         []byte
}

// fakeCloud is Keystone, Nova and Placement answering with recorded
// answers. Keystone gives a new token per login (token-1, token-2, ...),
// expiring ttl after the login; the others answer with the recording
// whose method, path, query and (for writes) JSON body match the request,
// and with the recorded 401 when the token is not one the cloud accepts.
type fakeCloud struct {
	t   *testing.T
	srv *httptest.Server

	mu     sync.Mutex
	recs   []recording
	seen   []seen
	mark   int // len(seen) when client() returned
	logins int
	valid  map[string]bool
	ttl    []time.Duration // ttl[i]: lifetime of the (i+1)th token; the last one repeats
	refuse bool            // answer every login with the recorded 401 (the password changed)
}

// newFakeCloud serves the recordings named until the test ends, and
// always keystone-token and the version documents New reads.
func newFakeCloud(t *testing.T, names ...string) *fakeCloud {
	f := &fakeCloud{t: t, valid: map[string]bool{}, ttl: []time.Duration{time.Hour}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	for _, n := range append([]string{"keystone-token", "nova-version", "placement-versions"}, names...) {
		f.recs = append(f.recs, readRecording(t, n, f.srv.URL))
	}
	return f
}

// edit changes recording name as the test needs: its body's old into new.
func (f *fakeCloud) edit(name, old, new string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.recs {
		if f.recs[i].name == name {
			if !bytes.Contains(f.recs[i].body, []byte(old)) {
				f.t.Fatalf("%s has no %q", name, old)
			}
			f.recs[i].body = bytes.ReplaceAll(f.recs[i].body, []byte(old), []byte(new))
			return
		}
	}
	f.t.Fatalf("no recording %s", name)
}

// asked makes recording name the answer to query instead of the one it
// was recorded for.
func (f *fakeCloud) asked(name string, query url.Values) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.recs {
		if f.recs[i].name == name {
			f.recs[i].query = query
			return
		}
	}
	f.t.Fatalf("no recording %s", name)
}

func (f *fakeCloud) auth() Auth {
	return Auth{AuthURL: f.srv.URL + "/identity/v3", Username: "admin", Password: "s3cret-pw", ProjectName: "admin", Region: "RegionOne"}
}

// client logs in to the fake cloud.
func (f *fakeCloud) client() *Client {
	f.t.Helper()
	c, err := New(context.Background(), f.auth(), f.srv.Client())
	if err != nil {
		f.t.Fatalf("New: %v", err)
	}
	f.mu.Lock()
	f.mark = len(f.seen)
	f.mu.Unlock()
	return c
}

// refuseLogins makes Keystone refuse every login from now on.
func (f *fakeCloud) refuseLogins() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.refuse = true
}

// revoke makes the cloud refuse every token given so far.
func (f *fakeCloud) revoke() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.valid = map[string]bool{}
}

// requests returns what the cloud received since client() returned,
// logins left out.
func (f *fakeCloud) requests() []seen {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []seen
	for _, s := range f.seen[f.mark:] {
		if !strings.HasPrefix(s.Path, "/identity/") {
			out = append(out, s)
		}
	}
	return out
}

func (f *fakeCloud) loginCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.logins
}

func (f *fakeCloud) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seen = append(f.seen, seen{Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), Header: r.Header.Clone(), Body: body})
	if r.Method == http.MethodPost && r.URL.Path == "/identity/v3/auth/tokens" {
		f.login(w, body)
		return
	}
	if !f.valid[r.Header.Get("X-Auth-Token")] {
		f.answer(w, readRecording(f.t, "unauthorized", f.srv.URL), nil)
		return
	}
	for _, rec := range f.recs {
		if rec.method == r.Method && rec.path == r.URL.Path && rec.query.Encode() == r.URL.Query().Encode() &&
			(len(rec.reqBody) == 0 || jsonEqual(rec.reqBody, body)) {
			f.answer(w, rec, nil)
			return
		}
	}
	f.t.Errorf("fake cloud: no recording for %s %s %s", r.Method, r.URL, body)
	http.Error(w, `{"itemNotFound": {"code": 404, "message": "no recording"}}`, http.StatusNotFound)
}

// login answers a password login with the recorded token answer, a new
// token and a new expiry.
func (f *fakeCloud) login(w http.ResponseWriter, body []byte) {
	var req struct {
		Auth struct {
			Identity struct {
				Methods  []string `json:"methods"`
				Password struct {
					User struct {
						Name     string `json:"name"`
						Password string `json:"password"`
						Domain   struct {
							Name string `json:"name"`
						} `json:"domain"`
					} `json:"user"`
				} `json:"password"`
			} `json:"identity"`
			Scope struct {
				Project struct {
					Name   string `json:"name"`
					Domain struct {
						Name string `json:"name"`
					} `json:"domain"`
				} `json:"project"`
			} `json:"scope"`
		} `json:"auth"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		f.t.Errorf("login: %v: %s", err, body)
	}
	id, a := req.Auth.Identity, f.auth()
	u, p := id.Password.User, req.Auth.Scope.Project
	if fmt.Sprint(id.Methods) != "[password]" || u.Name != a.Username || u.Domain.Name != "Default" ||
		p.Name != a.ProjectName || p.Domain.Name != "Default" {
		f.t.Errorf("login body: %s", body)
	}
	if u.Password != a.Password || f.refuse {
		f.answer(w, readRecording(f.t, "keystone-wrong-password", f.srv.URL), nil)
		return
	}
	f.logins++
	token := fmt.Sprintf("token-%d", f.logins)
	f.valid[token] = true
	ttl := f.ttl[min(f.logins, len(f.ttl))-1]
	rec := readRecording(f.t, "keystone-token", f.srv.URL)
	rec.body = expiresAt.ReplaceAll(rec.body, []byte(`"expires_at": "`+time.Now().Add(ttl).UTC().Format("2006-01-02T15:04:05.000000Z")+`"`))
	f.answer(w, rec, http.Header{"X-Subject-Token": {token}})
}

var expiresAt = regexp.MustCompile(`"expires_at": *"[^"]*"`)

func (f *fakeCloud) answer(w http.ResponseWriter, rec recording, extra http.Header) {
	for k, v := range rec.header {
		switch k {
		case "Content-Length", "Date", "Connection", "Transfer-Encoding":
			continue
		}
		w.Header()[k] = v
	}
	for k, v := range extra {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.status)
	w.Write(rec.body)
}

// jsonEqual reports whether a and b are the same JSON value.
func jsonEqual(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}
