package splitbrain

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/haconf/haconf/drbd"
)

// fakeWorld is a stateful fake of a two-node DRBD pair under Pacemaker. Each
// node is reached through its own runner (fakeNode.Run), keeps DRBD state
// and a block device, and renders /proc/drbd, get-gi, status --json,
// crm_mon and friends from that state. Commands change the state the way
// DRBD does: connecting two diverged nodes without --discard-my-data
// leaves both StandAlone again.
type fakeWorld struct {
	mu       sync.Mutex
	version  string // 8.4.11 or 9.2.8
	nodes    map[string]*fakeNode
	promoted string
	vipOn    string
	managed  bool
	cleanups int
}

type fakeNode struct {
	w          *fakeWorld
	name       string
	role, disk string
	conn       string // StandAlone, Connecting, Connected
	repl       string // Established, SyncTarget, SyncSource, Off
	syncReads  int
	gi         drbd.GI
	oos        int64
	data       map[int]string
	discard    bool
	lvm        bool
	freeBytes  int64
	files      map[string]string // path -> content digest
	snapshots  map[string]map[int]string
	mutations  []string
	fail       map[string]error // argv prefix -> error
}

const fakeSize = 268435456

func newFakeWorld(version string, names ...string) *fakeWorld {
	w := &fakeWorld{version: version, nodes: map[string]*fakeNode{}, managed: true}
	for _, n := range names {
		w.nodes[n] = &fakeNode{w: w, name: n, role: drbd.RoleSecondary, disk: drbd.DiskUpToDate, conn: drbd.ConnConnected, repl: drbd.ReplEstablished,
			gi: drbd.GI{Current: uuidParent}, data: map[int]string{0: "base"}, freeBytes: 1 << 40,
			files: map[string]string{}, snapshots: map[string]map[int]string{}, fail: map[string]error{}}
	}
	return w
}

// splitBrain puts the pair in split brain: each node wrote the given blocks
// while disconnected, promoted is the node Pacemaker promoted afterwards.
func (w *fakeWorld) splitBrain(promoted string, writes map[string][]int) {
	w.promoted, w.vipOn = promoted, promoted
	cur := map[string]uint64{"ctl1": uuidCtl1, "ctl2": uuidCtl2}
	for name, n := range w.nodes {
		n.conn, n.repl = drbd.ConnStandAlone, drbd.ReplOff
		n.role = drbd.RoleSecondary
		if name == promoted {
			n.role = drbd.RolePrimary
		}
		n.gi = drbd.GI{Current: cur[name] | 1, Bitmap: uuidParent}
		for _, b := range writes[name] {
			n.data[b] = name + "-wrote-" + fmt.Sprint(b)
			n.oos += 4
		}
	}
}

func (w *fakeWorld) peerOf(n *fakeNode) *fakeNode {
	for name, p := range w.nodes {
		if name != n.name {
			return p
		}
	}
	return nil
}

func digest(data map[int]string) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(data)) {
		fmt.Fprintf(&b, "%d=%s;", k, data[k])
	}
	return fmt.Sprintf("%x", sha256.Sum256([]byte(b.String())))
}

func (n *fakeNode) Run(ctx context.Context, name string, args ...string) ([]byte, error) {
	n.w.mu.Lock()
	defer n.w.mu.Unlock()
	argv := strings.Join(append([]string{name}, args...), " ")
	for prefix, err := range n.fail {
		if strings.HasPrefix(argv, prefix) {
			return nil, err
		}
	}
	mutate := func() { n.mutations = append(n.mutations, argv) }
	switch {
	case argv == "cat /proc/drbd":
		return []byte(n.renderProc()), nil
	case argv == "drbdsetup status --json" && !drbd.Is84(n.w.version):
		return []byte(n.renderJSON()), nil
	case argv == "drbdadm get-gi r0":
		g := n.gi
		return fmt.Appendf(nil, "%016X:%016X:%016X:%016X:1:1:0:0:0:0:0\n", g.Current, g.Bitmap, uint64(0), uint64(0)), nil
	case strings.HasPrefix(argv, "drbdadm") && !strings.HasSuffix(argv, " r0"):
		return nil, fmt.Errorf("'%s' not defined in your config (for this host)", args[len(args)-1])
	case argv == "drbdadm disconnect r0":
		mutate()
		n.conn, n.repl, n.discard = drbd.ConnStandAlone, drbd.ReplOff, false
		if p := n.w.peerOf(n); p.conn == drbd.ConnConnected {
			p.conn, p.repl = drbd.ConnConnecting, drbd.ReplOff
		}
	case argv == "drbdadm secondary r0":
		mutate()
		n.role = drbd.RoleSecondary
	case argv == "drbdadm connect r0", argv == "drbdadm connect --discard-my-data r0":
		mutate()
		if n.conn != drbd.ConnStandAlone {
			return nil, errors.New("connect: already connecting (exit 10)")
		}
		n.conn, n.discard = drbd.ConnConnecting, strings.Contains(argv, "discard")
		n.w.handshake()
	case strings.HasPrefix(argv, "crm_mon"):
		return []byte(n.w.renderCrmMon()), nil
	case strings.HasPrefix(argv, "crm_resource --resource drbd-r0-clone --meta --set-parameter is-managed --parameter-value "):
		mutate()
		n.w.managed = strings.HasSuffix(argv, "true")
	case argv == "crm_resource --cleanup --resource drbd-r0-clone":
		mutate()
		n.w.cleanups++
	case argv == "ip -o addr show":
		out := "1: lo    inet 127.0.0.1/8 scope host lo\n"
		if n.w.vipOn == n.name {
			out += "2: eth0    inet 192.0.2.10/24 scope global secondary eth0\n"
		}
		return []byte(out), nil
	case strings.HasPrefix(argv, "lvs --noheadings --nosuffix --units b --separator : -o vg_name,lv_name,lv_size /dev/vg0/haconf"):
		if !n.lvm {
			return nil, errors.New("Failed to find logical volume (exit 5)")
		}
		return fmt.Appendf(nil, "  vg0:haconf:%d\n", fakeSize), nil
	case strings.HasPrefix(argv, "lvs --noheadings -o lv_name,origin,lv_attr vg0/"):
		snap := strings.TrimPrefix(args[len(args)-1], "vg0/")
		if _, ok := n.snapshots[snap]; !ok {
			return nil, errors.New("Failed to find logical volume (exit 5)")
		}
		return []byte("  " + snap + " haconf swi-a-s---\n"), nil
	case strings.HasPrefix(argv, "lvcreate --snapshot --extents 100%ORIGIN --name "):
		mutate()
		n.snapshots[args[4]] = maps.Clone(n.data)
	case argv == "blockdev --getsize64 /dev/vg0/haconf":
		return fmt.Appendf(nil, "%d\n", fakeSize), nil
	case strings.HasPrefix(argv, "mkdir -p "):
	case strings.HasPrefix(argv, "df --output=avail -B1 "):
		return fmt.Appendf(nil, "    Avail\n%d\n", n.freeBytes), nil
	case strings.HasPrefix(argv, "dd if=/dev/vg0/haconf of="):
		mutate()
		n.files[strings.TrimPrefix(args[1], "of=")] = digest(n.data)
	case strings.HasPrefix(argv, "sha256sum "):
		if args[0] == "/dev/vg0/haconf" {
			return []byte(digest(n.data) + "  " + args[0] + "\n"), nil
		}
		d, ok := n.files[args[0]]
		if !ok {
			return nil, errors.New("sha256sum: No such file or directory (exit 1)")
		}
		return []byte(d + "  " + args[0] + "\n"), nil
	default:
		return nil, fmt.Errorf("fake %s: unexpected command %q", n.name, argv)
	}
	return nil, nil
}

// handshake connects two nodes that both try to connect, the way DRBD
// decides from generation identifiers.
func (w *fakeWorld) handshake() {
	var a, b *fakeNode
	for _, n := range w.nodes {
		if a == nil {
			a = n
		} else {
			b = n
		}
	}
	if a.conn != drbd.ConnConnecting || b.conn != drbd.ConnConnecting {
		return
	}
	source, target := a, b
	switch drbd.Relate(a.gi, b.gi) {
	case drbd.RelSame:
		a.conn, b.conn, a.repl, b.repl = drbd.ConnConnected, drbd.ConnConnected, drbd.ReplEstablished, drbd.ReplEstablished
		return
	case drbd.RelBehind:
		source, target = b, a
	case drbd.RelSplitBrain:
		switch {
		case a.discard && !b.discard:
			source, target = b, a
		case b.discard && !a.discard:
		default: // Split-Brain detected but unresolved, dropping connection!
			a.conn, b.conn = drbd.ConnStandAlone, drbd.ConnStandAlone
			return
		}
	case drbd.RelUnrelated:
		a.conn, b.conn = drbd.ConnStandAlone, drbd.ConnStandAlone
		return
	}
	target.data = maps.Clone(source.data)
	target.gi = drbd.GI{Current: source.gi.Current}
	source.gi = drbd.GI{Current: source.gi.Current}
	source.oos, target.oos = 0, 0
	source.conn, target.conn = drbd.ConnConnected, drbd.ConnConnected
	source.repl, target.repl = "SyncSource", "SyncTarget"
	target.disk, target.discard, source.discard = drbd.DiskInconsistent, false, false
	source.syncReads, target.syncReads = 0, 0
}

// tick advances a resync: after two state reads the sync is done.
func (n *fakeNode) tick() {
	if n.repl != "SyncSource" && n.repl != "SyncTarget" {
		return
	}
	n.syncReads++
	if n.syncReads > 2 {
		p := n.w.peerOf(n)
		n.repl, p.repl = drbd.ReplEstablished, drbd.ReplEstablished
		n.disk, p.disk = drbd.DiskUpToDate, drbd.DiskUpToDate
	}
}

func (n *fakeNode) renderProc() string {
	if !drbd.Is84(n.w.version) {
		return "version: " + n.w.version + " (api:2/proto:86-122)\nTransports (api:20): tcp (9.2.8)\n"
	}
	n.tick()
	p := n.w.peerOf(n)
	cs := map[string]string{drbd.ConnStandAlone: "StandAlone", drbd.ConnConnecting: "WFConnection"}[n.conn]
	peerRole, peerDisk, proto := drbd.RoleUnknown, drbd.DiskDUnknown, ""
	if n.conn == drbd.ConnConnected {
		cs, peerRole, peerDisk, proto = n.repl, p.role, p.disk, "C"
		if n.repl == drbd.ReplEstablished {
			cs = "Connected"
		}
	}
	return fmt.Sprintf("version: %s (api:1/proto:86-101)\nsrcversion: 2E9BBB1F4FF2B6AA7D2B5B6\n 0: cs:%s ro:%s/%s ds:%s/%s %s r-----\n    ns:0 nr:0 dw:0 dr:0 al:0 bm:0 lo:0 pe:0 ua:0 ap:0 ep:1 wo:f oos:%d\n",
		n.w.version, cs, n.role, peerRole, n.disk, peerDisk, proto, n.oos)
}

func (n *fakeNode) renderJSON() string {
	n.tick()
	p := n.w.peerOf(n)
	peerRole, peerDisk, repl := drbd.RoleUnknown, drbd.DiskDUnknown, drbd.ReplOff
	if n.conn == drbd.ConnConnected {
		peerRole, peerDisk, repl = p.role, p.disk, n.repl
	}
	return fmt.Sprintf(`[{"name":"r0","role":%q,"devices":[{"volume":0,"minor":0,"disk-state":%q}],
"connections":[{"peer-node-id":1,"name":%q,"connection-state":%q,"peer-role":%q,
"peer_devices":[{"volume":0,"replication-state":%q,"peer-disk-state":%q,"out-of-sync":%d}]}]}]`,
		n.role, n.disk, p.name, n.conn, peerRole, repl, peerDisk, n.oos)
}

func (w *fakeWorld) renderCrmMon() string {
	var b strings.Builder
	b.WriteString(`<pacemaker-result api-version="2.25"><nodes>`)
	for _, name := range slices.Sorted(maps.Keys(w.nodes)) {
		fmt.Fprintf(&b, `<node name=%q online="true"/>`, name)
	}
	fmt.Fprintf(&b, `</nodes><resources><clone id="drbd-r0-clone" multi_state="true" managed="%t">`, w.managed)
	for _, name := range slices.Sorted(maps.Keys(w.nodes)) {
		role := "Unpromoted"
		if name == w.promoted {
			role = "Promoted"
		}
		fmt.Fprintf(&b, `<resource id="drbd-r0" resource_agent="ocf:linbit:drbd" role=%q managed="%t"><node name=%q/></resource>`, role, w.managed, name)
	}
	b.WriteString(`</clone>`)
	if w.vipOn != "" {
		fmt.Fprintf(&b, `<group id="g-services"><resource id="vip" resource_agent="ocf:heartbeat:IPaddr2" role="Started"><node name=%q/></resource></group>`, w.vipOn)
	}
	b.WriteString(`</resources><status code="0" message="OK"/></pacemaker-result>`)
	return b.String()
}

// fakeMember wraps a node to simulate an unreachable peer.
type unreachableMember struct{ name string }

func (u unreachableMember) NodeName() string { return u.name }
func (u unreachableMember) Evidence(context.Context, string) (NodeEvidence, error) {
	return NodeEvidence{}, errors.New("dial tcp 198.51.100.12:9750: connect: connection refused")
}
func (u unreachableMember) State(context.Context, string) (drbd.Resource, error) {
	return drbd.Resource{}, errors.New("unreachable")
}
func (u unreachableMember) Apply(context.Context, PeerRequest) (PeerResult, error) {
	return PeerResult{}, errors.New("unreachable")
}
