package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// cloud is Keystone, Nova and Placement as far as compute/nova's Client
// uses them, on one loopback HTTP server: the calls it makes, answered in
// the JSON shapes of compute/nova/testdata's recordings (checked by
// TestCloudShapes), each after a latency drawn from cloudParams. An
// evacuation is accepted at once, claimed by a simulated scheduler (or
// refused: no room, anti-affinity, target down) after Schedule, and
// ACTIVE on its target after Rebuild; Placement keeps the allocation on
// the failed host, as Nova does until that host's nova-compute returns.
type cloud struct {
	p   cloudParams
	srv *http.Server
	url string // http://127.0.0.1:port

	sem   map[string]chan struct{} // per API, when p.Workers > 0
	conns atomic.Int64             // TCP connections accepted

	mu        sync.Mutex
	tokens    map[string]bool
	logins    int
	requestID int
	services  []*service // by host index
	svcByID   map[string]*service
	svcByHost map[string]*service
	servers   []*server // by id
	srvByID   map[string]*server
	groups    []*group
	providers []*provider
	provByID  map[string]*provider
	provByNm  map[string]*provider
	racks     [][]string
	calls     map[string]*callStat
	closed    bool
}

// cloudParams size the cloud and its latencies.
type cloudParams struct {
	Hosts, Servers int
	RackSize       int           // hosts per aggregate (rack), in host order
	APILatency     span          // every call, before its answer
	PerItem        time.Duration // added per item a list returns
	Schedule       span          // evacuate accepted -> the scheduler's claim or refusal
	Rebuild        span          // claim -> ACTIVE (or SHUTOFF) on the target
	MaxLimit       int           // Nova's max_limit: the longest page
	Workers        int           // requests each API serves at once; 0: no limit
	AntiAffinity   float64       // share of servers in anti-affinity groups
	Seed           uint64
}

// span is a latency drawn uniformly between Min and Max.
type span struct{ Min, Max time.Duration }

func (s span) draw() time.Duration {
	if s.Max <= s.Min {
		return s.Min
	}
	return s.Min + rand.N(s.Max-s.Min+1)
}

func (s span) String() string {
	if s.Max <= s.Min {
		return s.Min.String()
	}
	return s.Min.String() + "-" + s.Max.String()
}

// Set parses "20ms-60ms" or "1s" (flag.Value).
func (s *span) Set(v string) error {
	lo, hi, ok := strings.Cut(v, "-")
	a, err := time.ParseDuration(lo)
	if err != nil {
		return err
	}
	b := a
	if ok {
		if b, err = time.ParseDuration(hi); err != nil {
			return err
		}
	}
	if b < a {
		return fmt.Errorf("%s: the upper bound is below the lower", v)
	}
	*s = span{a, b}
	return nil
}

// Resources in Placement's classes.
type resources struct{ VCPU, MemoryMB, DiskGB int }

func (r resources) add(o resources, sign int) resources {
	return resources{r.VCPU + sign*o.VCPU, r.MemoryMB + sign*o.MemoryMB, r.DiskGB + sign*o.DiskGB}
}

func (r resources) within(c resources) bool {
	return r.VCPU <= c.VCPU && r.MemoryMB <= c.MemoryMB && r.DiskGB <= c.DiskGB
}

type flavor struct {
	Name   string
	Size   resources
	Weight int // share of the servers, in percent
}

// flavors: about 17 GB of memory per server on average, so 20 servers
// per host fill two thirds of a host's memory (the tightest class).
var flavors = []flavor{
	{"m1.small", resources{2, 4096, 40}, 40},
	{"m1.medium", resources{4, 8192, 80}, 30},
	{"m1.large", resources{8, 32768, 160}, 20},
	{"m1.xlarge", resources{16, 65536, 320}, 10},
}

// A host's inventory: 64 cores at allocation ratio 4, 512 GiB of which
// 4 GiB reserved, 4 TB of disk.
var (
	invVCPU   = inventory{Total: 64, Reserved: 0, Ratio: 4}
	invMemory = inventory{Total: 524288, Reserved: 4096, Ratio: 1}
	invDisk   = inventory{Total: 4000, Reserved: 0, Ratio: 1}
	capacity  = resources{invVCPU.capacity(), invMemory.capacity(), invDisk.capacity()}
)

type inventory struct {
	Total, Reserved int
	Ratio           float64
}

func (i inventory) capacity() int { return int(float64(i.Total-i.Reserved) * i.Ratio) }

type service struct {
	ID, Host, Zone, Status string
	DisabledReason         *string
	ForcedDown             bool
	Updated                time.Time
	Crashed                time.Time // when its host died (no more heartbeats); zero while alive
}

// serviceDownTime is Nova's service_down_time: a host that stops
// heartbeating is reported down after it.
const serviceDownTime = 60 * time.Second

func (s *service) state(now time.Time) string {
	if s.ForcedDown || (!s.Crashed.IsZero() && now.Sub(s.Crashed) > serviceDownTime) {
		return "down"
	}
	return "up"
}

type server struct {
	ID, Name string
	Status   string // ACTIVE, SHUTOFF, REBUILD, ERROR
	Task     string // "" or rebuilding
	VMState  string
	Host     string
	Flavor   flavor
	Created  time.Time
	Updated  time.Time
	Stopped  bool // it was SHUTOFF before its host failed: stays so when evacuated
	Fault    string
	Groups   []*group
	Claim    string // the target holding its allocation while it is rebuilt
	Evacs    []evacuation
}

// evacuation is one evacuate call the cloud accepted, and how it ended.
type evacuation struct {
	At, Done time.Time
	From     string
	Target   string
	Busy     bool   // a task ran on the server already (a second evacuation racing the first)
	Result   string // "active", or the scheduler's refusal: "no room", "anti-affinity", "target down"
}

type group struct {
	ID, Name string
	Policy   string
	Members  []*server
}

type provider struct {
	UUID, Name string
	Generation int
	Used       resources
}

type callStat struct {
	N     int
	Total time.Duration // served time, queueing for a worker included
	Max   time.Duration
}

// newCloud builds the cloud (hosts cmp0001..., servers placed at random
// where they fit, anti-affinity groups of 2-4 on distinct hosts) and
// starts serving it on loopback.
func newCloud(p cloudParams) (*cloud, error) {
	if p.MaxLimit == 0 {
		p.MaxLimit = 1000
	}
	c := &cloud{
		p: p, tokens: map[string]bool{}, svcByID: map[string]*service{}, svcByHost: map[string]*service{},
		srvByID: map[string]*server{}, provByID: map[string]*provider{}, provByNm: map[string]*provider{},
		calls: map[string]*callStat{}, sem: map[string]chan struct{}{},
	}
	if err := c.populate(); err != nil {
		return nil, err
	}
	if p.Workers > 0 {
		for _, api := range []string{"identity", "compute", "placement"} {
			c.sem[api] = make(chan struct{}, p.Workers)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	c.url = "http://" + ln.Addr().String()
	c.srv = &http.Server{Handler: c.routes(), ReadHeaderTimeout: 10 * time.Second, ConnState: func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			c.conns.Add(1)
		}
	}}
	go c.srv.Serve(ln)
	return c, nil
}

// close stops serving; the state changes scheduled still pending are
// dropped.
func (c *cloud) close() {
	c.srv.Close()
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
}

func hostName(i int) string { return fmt.Sprintf("cmp%04d", i+1) }

func uuid(kind byte, n int) string {
	return fmt.Sprintf("%08x-0000-4000-8%03x-%012x", uint32(kind)<<24|uint32(n>>20), n&0xfff, n)
}

var epoch = time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)

func (c *cloud) populate() error {
	p := c.p
	r := rand.New(rand.NewPCG(p.Seed, 16))
	rack := max(p.RackSize, 1)
	for i := range p.Hosts {
		h := hostName(i)
		s := &service{ID: uuid('s', i), Host: h, Zone: "nova", Status: "enabled", Updated: epoch}
		c.services = append(c.services, s)
		c.svcByID[s.ID], c.svcByHost[h] = s, s
		pr := &provider{UUID: uuid('p', i), Name: h, Generation: 1}
		c.providers = append(c.providers, pr)
		c.provByID[pr.UUID], c.provByNm[h] = pr, pr
		if i%rack == 0 {
			c.racks = append(c.racks, nil)
		}
		c.racks[len(c.racks)-1] = append(c.racks[len(c.racks)-1], h)
	}
	pick := func() flavor {
		n := r.IntN(100)
		for _, f := range flavors {
			if n < f.Weight {
				return f
			}
			n -= f.Weight
		}
		return flavors[0]
	}
	for i := range p.Servers {
		s := &server{ID: uuid('v', i), Name: fmt.Sprintf("vm-%05d", i+1), Status: "ACTIVE", VMState: "active", Flavor: pick(),
			Created: epoch.Add(time.Duration(i) * time.Second)}
		s.Updated = s.Created
		if r.IntN(100) < 5 {
			s.Status, s.VMState, s.Stopped = "SHUTOFF", "stopped", true
		}
		c.servers = append(c.servers, s)
		c.srvByID[s.ID] = s
	}
	// Anti-affinity groups of 2-4 members (and as many in soft-anti-affinity
	// groups, which the chooser does not enforce), placed first.
	inGroup := int(p.AntiAffinity * float64(p.Servers))
	for n, next := 0, 0; next < min(2*inGroup, p.Servers); n++ {
		size := 2 + r.IntN(3)
		g := &group{ID: uuid('g', n), Name: fmt.Sprintf("sg-%04d", n+1), Policy: "anti-affinity"}
		if next >= inGroup {
			g.Policy = "soft-anti-affinity"
		}
		for range size {
			if next >= p.Servers {
				break
			}
			s := c.servers[next]
			next++
			s.Groups = append(s.Groups, g)
			g.Members = append(g.Members, s)
		}
		c.groups = append(c.groups, g)
	}
	for _, s := range c.servers {
		if !c.place(r, s) {
			return fmt.Errorf("cloud: no room for server %d of %d (%s): too many servers for %d hosts", slices.Index(c.servers, s)+1, p.Servers, s.Flavor.Name, p.Hosts)
		}
	}
	return nil
}

// place puts s on a random host where it fits and no anti-affinity
// partner runs.
func (c *cloud) place(r *rand.Rand, s *server) bool {
	ok := func(pr *provider) bool {
		return pr.Used.add(s.Flavor.Size, 1).within(capacity) && !c.antiAffinityOn(s, pr.Name)
	}
	for range 100 {
		pr := c.providers[r.IntN(len(c.providers))]
		if ok(pr) {
			s.Host, pr.Used = pr.Name, pr.Used.add(s.Flavor.Size, 1)
			return true
		}
	}
	for _, pr := range c.providers {
		if ok(pr) {
			s.Host, pr.Used = pr.Name, pr.Used.add(s.Flavor.Size, 1)
			return true
		}
	}
	return false
}

// antiAffinityOn reports whether a member of one of s's anti-affinity
// groups runs on host, or is being rebuilt there.
func (c *cloud) antiAffinityOn(s *server, host string) bool {
	for _, g := range s.Groups {
		if g.Policy != "anti-affinity" {
			continue
		}
		for _, m := range g.Members {
			if m != s && (m.Host == host || m.Claim == host) {
				return true
			}
		}
	}
	return false
}

// crash stops hosts' heartbeats (their nova-compute is gone).
func (c *cloud) crash(hosts []string, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, h := range hosts {
		c.svcByHost[h].Crashed = at
	}
}

// --- HTTP ---

type answer struct {
	status int
	body   any // JSON; nil: no body
	items  int // list length, for PerItem
	header http.Header
}

type handler func(r *http.Request, arrived time.Time) answer

func (c *cloud) routes() http.Handler {
	mux := http.NewServeMux()
	route := func(pattern, api string, auth bool, h handler) {
		name := pattern
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			arrived := time.Now()
			if sem := c.sem[api]; sem != nil {
				sem <- struct{}{}
				defer func() { <-sem }()
			}
			var a answer
			if auth && !c.validToken(r.Header.Get("X-Auth-Token")) {
				a = answer{status: 401, body: errorBody("error", 401, "The request you have made requires authentication.", "Unauthorized")}
			} else {
				a = h(r, arrived)
			}
			time.Sleep(c.p.APILatency.draw() + time.Duration(a.items)*c.p.PerItem)
			c.write(w, api, a)
			took := time.Since(arrived)
			c.mu.Lock()
			st := c.calls[name]
			if st == nil {
				st = &callStat{}
				c.calls[name] = st
			}
			st.N++
			st.Total += took
			st.Max = max(st.Max, took)
			c.mu.Unlock()
		})
	}
	route("POST /identity/v3/auth/tokens", "identity", false, c.login)
	route("GET /compute/v2.1/{$}", "compute", false, c.computeVersion)
	route("GET /compute/v2.1/os-services", "compute", true, c.listServices)
	route("PUT /compute/v2.1/os-services/{id}", "compute", true, c.updateService)
	route("GET /compute/v2.1/servers/detail", "compute", true, c.listServers)
	route("GET /compute/v2.1/servers/{id}", "compute", true, c.getServer)
	route("POST /compute/v2.1/servers/{id}/action", "compute", true, c.serverAction)
	route("GET /compute/v2.1/os-server-groups", "compute", true, c.listGroups)
	route("GET /compute/v2.1/os-aggregates", "compute", true, c.listAggregates)
	route("GET /placement/{$}", "placement", false, c.placementVersions)
	route("GET /placement/resource_providers", "placement", true, c.listProviders)
	route("GET /placement/resource_providers/{uuid}/inventories", "placement", true, c.inventories)
	route("GET /placement/resource_providers/{uuid}/usages", "placement", true, c.usages)
	route("GET /placement/allocation_candidates", "placement", true, c.allocationCandidates)
	return mux
}

func (c *cloud) write(w http.ResponseWriter, api string, a answer) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	c.mu.Lock()
	c.requestID++
	id := fmt.Sprintf("req-%s", uuid('r', c.requestID))
	c.mu.Unlock()
	h.Set("x-openstack-request-id", id)
	switch api {
	case "compute":
		h.Set("OpenStack-API-Version", "compute 2.53")
		h.Set("X-OpenStack-Nova-API-Version", "2.53")
		h.Add("Vary", "OpenStack-API-Version")
		h.Add("Vary", "X-OpenStack-Nova-API-Version")
		h.Set("x-compute-request-id", id)
	case "placement":
		h.Set("openstack-api-version", "placement 1.14")
		h.Set("vary", "openstack-api-version")
	case "identity":
		h.Set("Vary", "X-Auth-Token")
	}
	for k, v := range a.header {
		h[k] = v
	}
	var body []byte
	if a.body != nil {
		body, _ = json.Marshal(a.body)
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(a.status)
	w.Write(body)
}

// errorBody is Nova's ({"badRequest": {"code", "message"}}) or Keystone's
// ({"error": {"code", "title", "message"}}) error.
func errorBody(key string, code int, message, title string) map[string]any {
	e := map[string]any{"code": code, "message": message}
	if title != "" {
		e["title"] = title
	}
	return map[string]any{key: e}
}

// placementError is Placement's error answer.
func placementError(status int, title, detail string) answer {
	return answer{status: status, body: map[string]any{"errors": []map[string]any{{
		"status": status, "title": title, "detail": detail, "request_id": "req-" + uuid('e', 0),
	}}}}
}

func (c *cloud) validToken(t string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.tokens[t]
}

// Credentials the cloud accepts.
const (
	cloudUser     = "admin"
	cloudPassword = "bench-secret"
	cloudProject  = "admin"
)

var (
	projectID = "c35bb7082ecd4d6d8558d907f7fdab53"
	userID    = "4775fb140078493ba32e778830ede61b"
)

func (c *cloud) login(r *http.Request, _ time.Time) answer {
	var req struct {
		Auth struct {
			Identity struct {
				Password struct {
					User struct {
						Name     string `json:"name"`
						Password string `json:"password"`
					} `json:"user"`
				} `json:"password"`
			} `json:"identity"`
		} `json:"auth"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		return answer{status: 400, body: errorBody("error", 400, err.Error(), "Bad Request")}
	}
	u := req.Auth.Identity.Password.User
	if u.Name != cloudUser || u.Password != cloudPassword {
		return answer{status: 401, body: errorBody("error", 401, "The request you have made requires authentication.", "Unauthorized")}
	}
	c.mu.Lock()
	c.logins++
	token := fmt.Sprintf("token-%d", c.logins)
	c.tokens[token] = true
	c.mu.Unlock()
	now := time.Now().UTC()
	endpoint := func(kind, url string) map[string]any {
		var eps []map[string]any
		for i, iface := range []string{"public", "internal", "admin"} {
			eps = append(eps, map[string]any{"id": uuid(kind[0], i), "interface": iface, "region_id": "RegionOne", "url": url, "region": "RegionOne"})
		}
		return map[string]any{"endpoints": eps, "id": uuid(kind[0], 9), "type": kind, "name": map[string]string{"compute": "nova", "placement": "placement", "identity": "keystone"}[kind]}
	}
	domain := map[string]string{"id": "default", "name": "Default"}
	return answer{status: 201, header: http.Header{"X-Subject-Token": {token}}, body: map[string]any{"token": map[string]any{
		"methods":    []string{"password"},
		"user":       map[string]any{"domain": domain, "id": userID, "name": cloudUser, "password_expires_at": nil},
		"audit_ids":  []string{"bench"},
		"expires_at": now.Add(time.Hour).Format("2006-01-02T15:04:05.000000Z"),
		"issued_at":  now.Format("2006-01-02T15:04:05.000000Z"),
		"project":    map[string]any{"domain": domain, "id": projectID, "name": cloudProject},
		"is_domain":  false,
		"roles":      []map[string]string{{"id": uuid('o', 1), "name": "reader"}, {"id": uuid('o', 2), "name": "member"}, {"id": uuid('o', 3), "name": "admin"}},
		"catalog": []any{
			endpoint("placement", c.url+"/placement"),
			endpoint("identity", c.url+"/identity/v3/"),
			endpoint("compute", c.url+"/compute/v2.1"),
		},
	}}}
}

func (c *cloud) computeVersion(*http.Request, time.Time) answer {
	return answer{status: 200, body: map[string]any{"version": map[string]any{
		"id": "v2.1", "status": "CURRENT", "version": "2.93", "min_version": "2.1", "updated": "2013-07-23T11:33:21Z",
		"links":       []map[string]string{{"rel": "self", "href": c.url + "/compute/v2.1/"}, {"rel": "describedby", "type": "text/html", "href": "http://docs.openstack.org/"}},
		"media-types": []map[string]string{{"base": "application/json", "type": "application/vnd.openstack.compute+json;version=2.1"}},
	}}}
}

func (c *cloud) placementVersions(*http.Request, time.Time) answer {
	return answer{status: 200, body: map[string]any{"versions": []map[string]any{{
		"id": "v1.0", "max_version": "1.39", "min_version": "1.0", "status": "CURRENT", "links": []map[string]string{{"rel": "self", "href": ""}},
	}}}}
}

// novaTime is how Nova writes a service's updated_at.
func novaTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000") }

func (c *cloud) serviceJSON(s *service, now time.Time) map[string]any {
	return map[string]any{
		"binary": "nova-compute", "host": s.Host, "id": s.ID, "zone": s.Zone, "status": s.Status, "state": s.state(now),
		"updated_at": novaTime(s.Updated), "disabled_reason": s.DisabledReason, "forced_down": s.ForcedDown,
	}
}

func (c *cloud) listServices(r *http.Request, _ time.Time) answer {
	if b := r.URL.Query().Get("binary"); b != "" && b != "nova-compute" {
		return answer{status: 200, body: map[string]any{"services": []any{}}}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	out := make([]any, 0, len(c.services))
	for _, s := range c.services {
		if s.Crashed.IsZero() {
			s.Updated = now.Add(-time.Duration(rand.N(10)) * time.Second) // heartbeats every 10 s
		}
		out = append(out, c.serviceJSON(s, now))
	}
	return answer{status: 200, body: map[string]any{"services": out}, items: len(out)}
}

func (c *cloud) updateService(r *http.Request, _ time.Time) answer {
	var body struct {
		ForcedDown     *bool   `json:"forced_down"`
		Status         *string `json:"status"`
		DisabledReason *string `json:"disabled_reason"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		return answer{status: 400, body: errorBody("badRequest", 400, "Invalid input for field/attribute: "+err.Error(), "")}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.svcByID[r.PathValue("id")]
	if s == nil {
		return answer{status: 404, body: errorBody("itemNotFound", 404, "Service "+r.PathValue("id")+" not found.", "")}
	}
	if body.ForcedDown != nil {
		s.ForcedDown = *body.ForcedDown
	}
	if body.Status != nil {
		s.Status = *body.Status
		if s.Status == "enabled" {
			s.DisabledReason = nil
		}
	}
	if body.DisabledReason != nil {
		reason := *body.DisabledReason
		s.DisabledReason = &reason
	}
	s.Updated = time.Now()
	return answer{status: 200, body: map[string]any{"service": c.serviceJSON(s, time.Now())}}
}

func (c *cloud) serverJSON(s *server) map[string]any {
	var task any
	if s.Task != "" {
		task = s.Task
	}
	hostStatus := "UP"
	svc := c.svcByHost[s.Host]
	switch {
	case svc.state(time.Now()) == "down":
		hostStatus = "DOWN"
	case !svc.Crashed.IsZero():
		hostStatus = "UNKNOWN"
	case svc.Status == "disabled":
		hostStatus = "MAINTENANCE"
	}
	power := 1
	if s.Status == "SHUTOFF" {
		power = 4
	}
	self := c.url + "/compute/v2.1/servers/" + s.ID
	image := uuid('i', 1)
	m := map[string]any{
		"id": s.ID, "name": s.Name, "status": s.Status, "tenant_id": projectID, "user_id": userID,
		"metadata": map[string]string{"owner": "bench"}, "hostId": fmt.Sprintf("%056x", len(s.Host)),
		"image":   map[string]any{"id": image, "links": []map[string]string{{"rel": "bookmark", "href": c.url + "/compute/images/" + image}}},
		"flavor":  map[string]any{"vcpus": s.Flavor.Size.VCPU, "ram": s.Flavor.Size.MemoryMB, "disk": s.Flavor.Size.DiskGB, "ephemeral": 0, "swap": 0, "original_name": s.Flavor.Name, "extra_specs": map[string]string{}},
		"created": s.Created.Format(time.RFC3339), "updated": s.Updated.UTC().Format(time.RFC3339),
		"addresses": map[string]any{}, "accessIPv4": "", "accessIPv6": "",
		"links":             []map[string]string{{"rel": "self", "href": self}, {"rel": "bookmark", "href": c.url + "/compute/servers/" + s.ID}},
		"OS-DCF:diskConfig": "MANUAL", "progress": 0, "OS-EXT-AZ:availability_zone": "nova", "config_drive": "", "key_name": nil,
		"OS-SRV-USG:launched_at": novaTime(s.Created), "OS-SRV-USG:terminated_at": nil,
		"OS-EXT-SRV-ATTR:host": s.Host, "OS-EXT-SRV-ATTR:instance_name": "instance-" + s.ID[len(s.ID)-8:], "OS-EXT-SRV-ATTR:hypervisor_hostname": s.Host,
		"OS-EXT-SRV-ATTR:reservation_id": "r-" + s.ID[len(s.ID)-8:], "OS-EXT-SRV-ATTR:launch_index": 0, "OS-EXT-SRV-ATTR:hostname": s.Name,
		"OS-EXT-SRV-ATTR:kernel_id": "", "OS-EXT-SRV-ATTR:ramdisk_id": "", "OS-EXT-SRV-ATTR:root_device_name": "/dev/vda", "OS-EXT-SRV-ATTR:user_data": nil,
		"OS-EXT-STS:task_state": task, "OS-EXT-STS:vm_state": s.VMState, "OS-EXT-STS:power_state": power,
		"os-extended-volumes:volumes_attached": []any{}, "locked": false, "description": nil, "tags": []string{}, "host_status": hostStatus,
	}
	if s.Fault != "" {
		m["fault"] = map[string]any{"code": 500, "created": s.Updated.UTC().Format(time.RFC3339), "message": s.Fault}
	}
	return m
}

func (c *cloud) listServers(r *http.Request, _ time.Time) answer {
	q := r.URL.Query()
	limit := c.p.MaxLimit
	if l, err := strconv.Atoi(q.Get("limit")); err == nil && l > 0 && l < limit {
		limit = l
	}
	host, marker := q.Get("host"), q.Get("marker")
	c.mu.Lock()
	defer c.mu.Unlock()
	if q.Get("all_tenants") == "" {
		return answer{status: 200, body: map[string]any{"servers": []any{}}} // the admin's own project has none
	}
	page := []any{}
	started := marker == ""
	var last string
	for _, s := range c.servers {
		if !started {
			started = s.ID == marker
			continue
		}
		if host != "" && s.Host != host {
			continue
		}
		if len(page) == limit {
			break
		}
		page = append(page, c.serverJSON(s))
		last = s.ID
	}
	if !started {
		return answer{status: 400, body: errorBody("badRequest", 400, "marker ["+marker+"] not found", "")}
	}
	body := map[string]any{"servers": page}
	if len(page) == limit {
		next := q
		next.Set("limit", strconv.Itoa(limit))
		next.Set("marker", last)
		body["servers_links"] = []map[string]string{{"rel": "next", "href": c.url + "/compute/v2.1/servers/detail?" + next.Encode()}}
	}
	return answer{status: 200, body: body, items: len(page)}
}

func (c *cloud) getServer(r *http.Request, _ time.Time) answer {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.srvByID[r.PathValue("id")]
	if s == nil {
		return answer{status: 404, body: errorBody("itemNotFound", 404, "Instance "+r.PathValue("id")+" could not be found.", "")}
	}
	return answer{status: 200, body: map[string]any{"server": c.serverJSON(s)}}
}

func (c *cloud) serverAction(r *http.Request, arrived time.Time) answer {
	var body map[string]json.RawMessage
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		return answer{status: 400, body: errorBody("badRequest", 400, "Malformed request body", "")}
	}
	id := r.PathValue("id")
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.srvByID[id]
	if s == nil {
		return answer{status: 404, body: errorBody("itemNotFound", 404, "Instance "+id+" could not be found.", "")}
	}
	if raw, ok := body["evacuate"]; ok {
		var ev struct {
			Host string `json:"host"`
		}
		if err := json.Unmarshal(raw, &ev); err != nil {
			return answer{status: 400, body: errorBody("badRequest", 400, "Invalid input for field/attribute evacuate.", "")}
		}
		return c.evacuate(s, ev.Host, arrived)
	}
	if _, ok := body["os-stop"]; ok {
		if s.Status == "SHUTOFF" || s.Task != "" {
			return answer{status: 409, body: errorBody("conflictingRequest", 409, fmt.Sprintf("Cannot 'stop' instance %s while it is in vm_state %s", id, s.VMState), "")}
		}
		s.Status, s.VMState, s.Updated = "SHUTOFF", "stopped", time.Now()
		return answer{status: 202}
	}
	return answer{status: 400, body: errorBody("badRequest", 400, "There is no such action", "")}
}

// evacuate accepts s's evacuation to target as Nova does from
// microversion 2.29 (target checked by the scheduler, not forced).
func (c *cloud) evacuate(s *server, target string, at time.Time) answer {
	src := c.svcByHost[s.Host]
	if src.state(time.Now()) == "up" {
		return answer{status: 400, body: errorBody("badRequest", 400, "Compute service of "+s.Host+" is still in use.", "")}
	}
	if target != "" {
		if c.svcByHost[target] == nil {
			return answer{status: 404, body: errorBody("itemNotFound", 404, "Compute host "+target+" not found.", "")}
		}
		if target == s.Host {
			return answer{status: 400, body: errorBody("badRequest", 400, "The target host can't be the same one.", "")}
		}
	}
	ev := evacuation{At: at, From: s.Host, Target: target, Busy: s.Task != ""}
	s.Evacs = append(s.Evacs, ev)
	n := len(s.Evacs) - 1
	s.Status, s.Task, s.Updated = "REBUILD", "rebuilding", time.Now()
	c.after(c.p.Schedule.draw(), func() { c.schedule(s, n) })
	return answer{status: 200}
}

// after runs f under the cloud's lock after d, unless the cloud closed.
func (c *cloud) after(d time.Duration, f func()) {
	time.AfterFunc(d, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if !c.closed {
			f()
		}
	})
}

// schedule claims the evacuation's target in Placement or refuses it
// (the server goes to ERROR, as NoValidHost leaves it).
func (c *cloud) schedule(s *server, n int) {
	ev := &s.Evacs[n]
	target := ev.Target
	if target == "" { // the scheduler's choice: the first host with room
		for _, pr := range c.providers {
			if svc := c.svcByHost[pr.Name]; pr.Name != s.Host && svc.Status == "enabled" && svc.state(time.Now()) == "up" &&
				pr.Used.add(s.Flavor.Size, 1).within(capacity) && !c.antiAffinityOn(s, pr.Name) {
				target = pr.Name
				break
			}
		}
	}
	refuse := ""
	if target == "" {
		refuse = "no room"
	} else {
		svc, pr := c.svcByHost[target], c.provByNm[target]
		switch {
		case svc.Status != "enabled" || svc.state(time.Now()) != "up":
			refuse = "target down"
		case !pr.Used.add(s.Flavor.Size, 1).within(capacity):
			refuse = "no room"
		case c.antiAffinityOn(s, target):
			refuse = "anti-affinity"
		}
	}
	now := time.Now()
	if refuse != "" {
		ev.Result, ev.Done = refuse, now
		s.Status, s.Task, s.VMState, s.Updated = "ERROR", "", "error", now
		s.Fault = "No valid host was found. " + refuse
		return
	}
	pr := c.provByNm[target]
	pr.Used = pr.Used.add(s.Flavor.Size, 1)
	pr.Generation++
	s.Claim, ev.Target = target, target
	c.after(c.p.Rebuild.draw(), func() {
		now := time.Now()
		s.Host, s.Claim, s.Task, s.Fault, s.Updated = target, "", "", "", now
		s.Status, s.VMState = "ACTIVE", "active"
		if s.Stopped {
			s.Status, s.VMState = "SHUTOFF", "stopped"
		}
		ev.Result, ev.Done = "active", now
	})
}

func (c *cloud) groupJSON(g *group) map[string]any {
	members := make([]string, len(g.Members))
	for i, m := range g.Members {
		members[i] = m.ID
	}
	return map[string]any{"id": g.ID, "name": g.Name, "policies": []string{g.Policy}, "metadata": map[string]any{},
		"members": members, "project_id": projectID, "user_id": userID}
}

func (c *cloud) listGroups(r *http.Request, _ time.Time) answer {
	q := r.URL.Query()
	limit := c.p.MaxLimit
	if l, err := strconv.Atoi(q.Get("limit")); err == nil && l > 0 && l < limit {
		limit = l
	}
	offset, _ := strconv.Atoi(q.Get("offset"))
	c.mu.Lock()
	defer c.mu.Unlock()
	out := []any{}
	for i := offset; i < len(c.groups) && len(out) < limit; i++ {
		out = append(out, c.groupJSON(c.groups[i]))
	}
	return answer{status: 200, body: map[string]any{"server_groups": out}, items: len(out)}
}

func (c *cloud) listAggregates(*http.Request, time.Time) answer {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := []any{}
	for i, hosts := range c.racks {
		out = append(out, map[string]any{"id": i + 1, "uuid": uuid('a', i), "name": fmt.Sprintf("rack%02d", i+1), "hosts": hosts,
			"metadata": map[string]string{}, "created_at": novaTime(epoch), "updated_at": nil, "deleted_at": nil, "deleted": false, "availability_zone": nil})
	}
	return answer{status: 200, body: map[string]any{"aggregates": out}, items: len(out)}
}

func (c *cloud) listProviders(*http.Request, time.Time) answer {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]any, 0, len(c.providers))
	for _, p := range c.providers {
		var links []map[string]string
		for _, rel := range []string{"self", "inventories", "usages", "aggregates", "traits", "allocations"} {
			href := "/resource_providers/" + p.UUID
			if rel != "self" {
				href += "/" + rel
			}
			links = append(links, map[string]string{"rel": rel, "href": href})
		}
		out = append(out, map[string]any{"uuid": p.UUID, "name": p.Name, "generation": p.Generation, "links": links,
			"parent_provider_uuid": nil, "root_provider_uuid": p.UUID})
	}
	return answer{status: 200, body: map[string]any{"resource_providers": out}, items: len(out)}
}

func (c *cloud) provider(r *http.Request) (*provider, *answer) {
	p := c.provByID[r.PathValue("uuid")]
	if p == nil {
		a := placementError(404, "Not Found", fmt.Sprintf("The resource could not be found.\n\n No resource provider with uuid %[1]s found : No resource provider with uuid %[1]s found  ", r.PathValue("uuid")))
		return nil, &a
	}
	return p, nil
}

func (c *cloud) inventories(r *http.Request, _ time.Time) answer {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, nf := c.provider(r)
	if nf != nil {
		return *nf
	}
	inv := func(i inventory) map[string]any {
		return map[string]any{"total": i.Total, "reserved": i.Reserved, "min_unit": 1, "max_unit": i.Total, "step_size": 1, "allocation_ratio": i.Ratio}
	}
	return answer{status: 200, body: map[string]any{"resource_provider_generation": p.Generation, "inventories": map[string]any{
		"VCPU": inv(invVCPU), "MEMORY_MB": inv(invMemory), "DISK_GB": inv(invDisk),
	}}}
}

func (c *cloud) usages(r *http.Request, _ time.Time) answer {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, nf := c.provider(r)
	if nf != nil {
		return *nf
	}
	return answer{status: 200, body: map[string]any{"resource_provider_generation": p.Generation, "usages": map[string]int{
		"VCPU": p.Used.VCPU, "MEMORY_MB": p.Used.MemoryMB, "DISK_GB": p.Used.DiskGB,
	}}}
}

// allocationCandidates answers GET /allocation_candidates?resources=VCPU:1
// as Placement does at 1.29 (compute/nova's Providers asks nothing else):
// one allocation request and one summary per provider with a VCPU free,
// the summary with capacity and used of every resource class.
func (c *cloud) allocationCandidates(r *http.Request, _ time.Time) answer {
	if q := r.URL.Query().Get("resources"); q != "VCPU:1" || r.Header.Get("OpenStack-API-Version") != "placement 1.29" {
		return placementError(400, "Bad Request", "the simulator answers resources=VCPU:1 at placement 1.29 only, not "+q+" at "+r.Header.Get("OpenStack-API-Version"))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	requests := []any{}
	summaries := map[string]any{}
	for _, p := range c.providers {
		if capacity.VCPU-p.Used.VCPU < 1 {
			continue
		}
		requests = append(requests, map[string]any{"allocations": map[string]any{p.UUID: map[string]any{"resources": map[string]int{"VCPU": 1}}}})
		summaries[p.UUID] = map[string]any{
			"resources": map[string]any{
				"VCPU":      map[string]int{"capacity": capacity.VCPU, "used": p.Used.VCPU},
				"MEMORY_MB": map[string]int{"capacity": capacity.MemoryMB, "used": p.Used.MemoryMB},
				"DISK_GB":   map[string]int{"capacity": capacity.DiskGB, "used": p.Used.DiskGB},
			},
			"traits": []string{"COMPUTE_NODE"}, "parent_provider_uuid": nil, "root_provider_uuid": p.UUID,
		}
	}
	return answer{status: 200, body: map[string]any{"allocation_requests": requests, "provider_summaries": summaries}, items: len(summaries),
		header: http.Header{"Openstack-Api-Version": {"placement 1.29"}}}
}

// --- what the run checks ---

// callStats returns a copy of the per-route counts.
func (c *cloud) callStats() map[string]callStat {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]callStat{}
	for k, v := range c.calls {
		out[k] = *v
	}
	return out
}

// serversOn returns the ids of the servers on hosts now.
func (c *cloud) serversOn(hosts []string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, s := range c.servers {
		if slices.Contains(hosts, s.Host) {
			out = append(out, s.ID)
		}
	}
	return out
}

// audit is the cloud's account of an evacuation run.
type audit struct {
	Servers       int            // servers of the failed hosts
	Moved         int            // ACTIVE or SHUTOFF on another host, no task
	Calls         map[int]int    // evacuate calls per server -> servers
	Busy          int            // calls accepted while a task ran (a second evacuation racing the first)
	Refused       map[string]int // scheduler refusals by reason
	FirstCall     time.Time      // the first evacuate call
	AllCalled     time.Time      // when every server had had its first call
	LastCall      time.Time      // the last evacuate call (retries included)
	AllActive     time.Time      // when the last server ran on its target
	OverCapacity  []string       // providers over capacity (none: the scheduler refuses)
	AntiAffinity  int            // anti-affinity groups with two members on one host
	StillOnFailed int
}

func (c *cloud) audit(ids []string) audit {
	c.mu.Lock()
	defer c.mu.Unlock()
	a := audit{Servers: len(ids), Calls: map[int]int{}, Refused: map[string]int{}}
	for _, id := range ids {
		s := c.srvByID[id]
		a.Calls[len(s.Evacs)]++
		if s.Task == "" && (s.Status == "ACTIVE" || s.Status == "SHUTOFF") && len(s.Evacs) > 0 && s.Host != s.Evacs[0].From {
			a.Moved++
		} else {
			a.StillOnFailed++
		}
		for i, ev := range s.Evacs {
			if ev.Busy {
				a.Busy++
			}
			if ev.Result != "" && ev.Result != "active" {
				a.Refused[ev.Result]++
			}
			if ev.Result == "active" && ev.Done.After(a.AllActive) {
				a.AllActive = ev.Done
			}
			if a.FirstCall.IsZero() || ev.At.Before(a.FirstCall) {
				a.FirstCall = ev.At
			}
			if i == 0 && ev.At.After(a.AllCalled) {
				a.AllCalled = ev.At
			}
			a.LastCall = maxTime(a.LastCall, ev.At)
		}
	}
	for _, p := range c.providers {
		if !p.Used.within(capacity) {
			a.OverCapacity = append(a.OverCapacity, p.Name)
		}
	}
	for _, g := range c.groups {
		if g.Policy != "anti-affinity" {
			continue
		}
		seen := map[string]bool{}
		for _, m := range g.Members {
			if seen[m.Host] {
				a.AntiAffinity++
				break
			}
			seen[m.Host] = true
		}
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
