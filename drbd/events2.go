package drbd

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Event is one line of `drbdsetup events2`.
type Event struct {
	// Time is set when events2 ran with --timestamps.
	Time time.Time `json:"time,omitempty"`
	// Kind is exists, create, change, destroy, call or response; "-" marks
	// the end of the initial --now dump ("exists -").
	Kind string `json:"kind"`
	// Object is resource, connection, device, peer-device, path or helper.
	Object string            `json:"object,omitempty"`
	Fields map[string]string `json:"fields,omitempty"`
}

// EndOfDump reports whether e is the "exists -" line.
func (e Event) EndOfDump() bool { return e.Kind == "exists" && e.Object == "-" }

var eventKinds = map[string]bool{"exists": true, "create": true, "change": true, "destroy": true, "call": true, "response": true}

// ParseEvent parses one events2 line. Tokens are split at their first ':'
// (values such as addresses contain more); unknown keys are kept.
func ParseEvent(line string) (Event, error) {
	f := strings.Fields(line)
	var e Event
	if len(f) > 0 {
		if t, err := time.Parse(time.RFC3339Nano, f[0]); err == nil {
			e.Time = t
			f = f[1:]
		}
	}
	if len(f) < 2 || !eventKinds[f[0]] {
		return Event{}, fmt.Errorf("events2: %q is not of the form KIND OBJECT key:value", truncate(line, 120))
	}
	e.Kind, e.Object = f[0], f[1]
	if e.Object == "-" {
		return e, nil
	}
	e.Fields = make(map[string]string, len(f)-2)
	for _, tok := range f[2:] {
		k, v, ok := strings.Cut(tok, ":")
		if !ok || k == "" {
			return Event{}, fmt.Errorf("events2: token %q in %q is not key:value", tok, truncate(line, 120))
		}
		e.Fields[k] = v
	}
	if e.Fields["name"] == "" {
		return Event{}, fmt.Errorf("events2: %s %s without name: %q", e.Kind, e.Object, truncate(line, 120))
	}
	return e, nil
}

// ParseEvents2 parses the lines of an events2 capture and folds them into
// a state. Blank lines are skipped; a malformed line is an error.
func ParseEvents2(data []byte) (Status, []Event, error) {
	var events []Event
	m := NewModel()
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		e, err := ParseEvent(sc.Text())
		if err != nil {
			return Status{}, nil, fmt.Errorf("line %d: %w", n, err)
		}
		events = append(events, e)
		m.Apply(e)
	}
	if err := sc.Err(); err != nil {
		return Status{}, nil, err
	}
	return m.Status(), events, nil
}

// Model folds events2 lines into per-volume state. It is not safe for
// concurrent use.
type Model struct {
	resources map[string]*res9
	// Synced is set once the "exists -" line was applied.
	Synced bool
}

type res9 struct {
	role       string
	splitBrain bool
	devices    map[int]*dev9     // by volume
	conns      map[string]*conn9 // by peer-node-id
}

type dev9 struct {
	minor int
	disk  string
}

type conn9 struct {
	name, state, role string
	peers             map[int]*peer9 // by volume
}

type peer9 struct {
	repl, disk string
	oos        int64
	done       float64
	hasDone    bool
	eta        int64
}

// NewModel returns an empty model.
func NewModel() *Model { return &Model{resources: map[string]*res9{}} }

// Apply folds one event into the model.
func (m *Model) Apply(e Event) {
	if e.EndOfDump() {
		m.Synced = true
		return
	}
	name := e.Fields["name"]
	if name == "" {
		return
	}
	r := m.resources[name]
	if r == nil {
		if e.Kind == "destroy" && e.Object == "resource" {
			return
		}
		r = &res9{devices: map[int]*dev9{}, conns: map[string]*conn9{}}
		m.resources[name] = r
	}
	vol := atoi(e.Fields["volume"], 0)
	peerID := e.Fields["peer-node-id"]
	switch e.Object {
	case "resource":
		if e.Kind == "destroy" {
			delete(m.resources, name)
			return
		}
		set(&r.role, e.Fields, "role")
	case "device":
		if e.Kind == "destroy" {
			delete(r.devices, vol)
			return
		}
		d := entry(r.devices, vol, func() *dev9 { return &dev9{minor: -1} })
		if v, ok := e.Fields["minor"]; ok {
			d.minor = atoi(v, -1)
		}
		set(&d.disk, e.Fields, "disk")
	case "connection":
		if e.Kind == "destroy" {
			delete(r.conns, peerID)
			return
		}
		c := r.conn(peerID)
		set(&c.name, e.Fields, "conn-name")
		set(&c.state, e.Fields, "connection")
		set(&c.role, e.Fields, "role")
	case "peer-device":
		c := r.conn(peerID)
		if e.Kind == "destroy" {
			delete(c.peers, vol)
			return
		}
		p := entry(c.peers, vol, func() *peer9 { return &peer9{eta: -1} })
		set(&c.name, e.Fields, "conn-name")
		set(&p.repl, e.Fields, "replication")
		set(&p.disk, e.Fields, "peer-disk")
		if v, ok := e.Fields["out-of-sync"]; ok {
			p.oos = int64(atoi(v, 0))
		}
		if v, ok := e.Fields["done"]; ok {
			p.done, _ = strconv.ParseFloat(v, 64)
			p.hasDone = true
		}
		if v, ok := e.Fields["eta"]; ok {
			p.eta = int64(atoi(v, -1))
		}
		if p.repl == ReplEstablished || p.repl == ReplOff {
			p.hasDone, p.eta = false, -1
		}
	case "helper":
		if e.Fields["helper"] == "split-brain" {
			r.splitBrain = true
		}
	}
}

func (r *res9) conn(id string) *conn9 {
	return entry(r.conns, id, func() *conn9 { return &conn9{peers: map[int]*peer9{}} })
}

// entry returns m[k], storing fresh() there first when there is none.
func entry[K comparable, V any](m map[K]*V, k K, fresh func() *V) *V {
	v := m[k]
	if v == nil {
		v = fresh()
		m[k] = v
	}
	return v
}

// Status renders the model as the common state, one entry per volume,
// sorted by resource name then volume. A resource without any connection
// is StandAlone.
func (m *Model) Status() Status {
	var st Status
	for name, r := range m.resources {
		vols := map[int]bool{}
		for v := range r.devices {
			vols[v] = true
		}
		var c *conn9
		for _, id := range sortedKeys(r.conns) {
			c = r.conns[id]
			break
		}
		if c != nil {
			for v := range c.peers {
				vols[v] = true
			}
		}
		for v := range vols {
			out := Resource{Name: name, Volume: v, Minor: -1, Role: r.role, SplitBrain: r.splitBrain,
				Connection: ConnStandAlone, Replication: ReplOff, PeerRole: RoleUnknown, PeerDisk: DiskDUnknown}
			if d := r.devices[v]; d != nil {
				out.Minor, out.Disk = d.minor, d.disk
			}
			if c != nil {
				out.PeerName = c.name
				out.Connection = orDefault(c.state, ConnStandAlone)
				out.PeerRole = orDefault(c.role, RoleUnknown)
				if p := c.peers[v]; p != nil {
					out.Replication = orDefault(p.repl, ReplOff)
					out.PeerDisk = orDefault(p.disk, DiskDUnknown)
					out.OutOfSyncKiB = p.oos
					if p.hasDone {
						out.Sync = &SyncProgress{Percent: p.done, RemainingKiB: p.oos, ETASeconds: p.eta}
					}
				}
			}
			st.Resources = append(st.Resources, out)
		}
	}
	sortResources(st.Resources)
	return st
}

func set(dst *string, f map[string]string, key string) {
	if v, ok := f[key]; ok {
		*dst = v
	}
}

func atoi(s string, def int) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		return def
	}
	return n
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
