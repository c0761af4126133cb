package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
)

// DefaultDir is where the lab keeps its disks, scripts, token and logs.
const DefaultDir = "/var/lib/haconf-lab"

// DefaultMemory is each node's RAM (UML mem=). A bootstrapped controller
// runs corosync, Pacemaker, MariaDB and RabbitMQ (an Erlang VM): at 384M
// the kernel killed corosync. The host only backs pages a node touches.
const DefaultMemory = "1024M"

// Link names a node's network link for faults.
type Link string

const (
	LinkMgmt    Link = "mgmt"
	LinkStorage Link = "storage"
	LinkAll     Link = "all"
)

// Lab addresses. Everything lives on the bridges and taps the lab creates.
var (
	MgmtPrefix    = netip.MustParsePrefix("10.251.0.0/24")
	StoragePrefix = netip.MustParsePrefix("10.251.1.0/24")
	ControlPrefix = netip.MustParsePrefix("10.251.2.0/24")
	HostMgmt      = netip.MustParseAddr("10.251.0.1")
	HostStorage   = netip.MustParseAddr("10.251.1.1")
	HostControl   = netip.MustParseAddr("10.251.2.1")
	VIP           = netip.MustParseAddr("10.251.0.10")
)

// Ports on the control link.
const (
	AgentPort  = 7411 // in each node: haconf-lab agent
	FencedPort = 7410 // on the host: haconf-lab fenced
)

// Bridge names on the host.
const (
	BridgeMgmt    = "hclab-mgmt"
	BridgeStorage = "hclab-stor"
)

// Node is one lab controller.
type Node struct {
	Name    string
	Index   int // 1 or 2
	Mgmt    netip.Addr
	Storage netip.Addr
	Control netip.Addr
}

// Nodes are the lab's two controllers.
var Nodes = []Node{node(1), node(2)}

func node(i int) Node {
	host := byte(10 + i)
	return Node{
		Name:    fmt.Sprintf("ctl%d", i),
		Index:   i,
		Mgmt:    netip.AddrFrom4([4]byte{10, 251, 0, host}),
		Storage: netip.AddrFrom4([4]byte{10, 251, 1, host}),
		Control: netip.AddrFrom4([4]byte{10, 251, 2, host}),
	}
}

// NodeByName returns the node called name.
func NodeByName(name string) (Node, error) {
	for _, n := range Nodes {
		if n.Name == name {
			return n, nil
		}
	}
	return Node{}, fmt.Errorf("%w: %q (the lab has ctl1 and ctl2)", ErrUnknownNode, name)
}

// Tap returns the host tap of n on link l (mgmt, storage or control).
func (n Node) Tap(l string) string { return fmt.Sprintf("hclab-%s-%c", n.Name, l[0]) }

// AgentURL is the base URL of n's exec agent.
func (n Node) AgentURL() string { return fmt.Sprintf("http://%s:%d", n.Control, AgentPort) }

// FencedURL is the base URL of the host's fence daemon, as nodes reach it.
func FencedURL() string { return fmt.Sprintf("http://%s:%d", HostControl, FencedPort) }

// Errors callers act on.
var (
	ErrUnknownNode = errors.New("unknown lab node")
	ErrNotRunning  = errors.New("lab node is not running")
	ErrBadDir      = errors.New("unusable lab directory")
)

// Runner runs one external command (internal/runner.Exec in production).
type Runner interface {
	Run(ctx context.Context, name string, args ...string) ([]byte, error)
}

// Lab drives the lab whose files live in Dir.
type Lab struct {
	Dir    string
	Run    Runner
	Log    *slog.Logger
	Memory string // each node's RAM; DefaultMemory when empty
	// Binary is the haconf binary copied into the lab and run in the nodes;
	// haconf-agent is taken from beside it when it is there.
	Binary string
	// LabBinary is the haconf-lab binary copied into the lab: the nodes'
	// exec agent and fence agent, and the host's fence daemon.
	LabBinary string
}

// settings are what Up chose, kept so that later commands (start, the fence
// daemon) boot nodes the same way.
type settings struct {
	Memory string `json:"memory"`
}

// Paths inside the lab directory.
func (l *Lab) path(elem ...string) string { return filepath.Join(append([]string{l.Dir}, elem...)...) }
func (l *Lab) nodeDir(n Node) string      { return l.path(n.Name) }
func (l *Lab) tokenFile() string          { return l.path("token") }
func (l *Lab) binPath() string            { return l.path("bin", "haconf") }
func (l *Lab) agentBinPath() string       { return l.path("bin", "haconf-agent") }
func (l *Lab) labBinPath() string         { return l.path("bin", "haconf-lab") }
func (l *Lab) umlDir() string             { return l.path("uml") }
func (l *Lab) pidFile(n Node) string      { return l.path(n.Name, "pid") }
func (l *Lab) fencedPidFile() string      { return l.path("fenced.pid") }
func (l *Lab) settingsFile() string       { return l.path("lab.json") }
func (l *Lab) umid(n Node) string         { return "hclab-" + n.Name }

// checkDir refuses directories that a node cannot read through its root:
// the node mounts its own /proc, /sys, /dev, /run and /tmp over the host's.
func checkDir(dir string) error {
	if !filepath.IsAbs(dir) {
		return fmt.Errorf("%w: %s: must be an absolute path", ErrBadDir, dir)
	}
	clean := filepath.Clean(dir)
	for _, p := range []string{"/proc", "/sys", "/dev", "/run", "/tmp", "/var/lib/drbd"} {
		if clean == p || strings.HasPrefix(clean, p+"/") {
			return fmt.Errorf("%w: %s: the nodes mount their own %s over the host's, so they could not read the lab there", ErrBadDir, dir, p)
		}
	}
	if clean == "/" {
		return fmt.Errorf("%w: /", ErrBadDir)
	}
	return nil
}

func (l *Lab) logger() *slog.Logger {
	if l.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l.Log
}

func (l *Lab) memory() string {
	if l.Memory != "" {
		return l.Memory
	}
	var s settings
	if b, err := os.ReadFile(l.settingsFile()); err == nil && json.Unmarshal(b, &s) == nil && s.Memory != "" {
		return s.Memory
	}
	return DefaultMemory
}

// Token returns the lab's shared secret (exec agent and fence daemon).
func (l *Lab) Token() (string, error) {
	b, err := os.ReadFile(l.tokenFile())
	if err != nil {
		return "", fmt.Errorf("read lab token (is the lab up?): %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}
