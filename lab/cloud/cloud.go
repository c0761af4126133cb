package cloud

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/haconf/haconf/lab"
)

// DefaultDir is where the cloud keeps its state, configuration, secrets and
// logs (mode 0700: the secrets and the database socket live there).
const DefaultDir = "/var/lib/haconf-cloud"

// DefaultHosts is how many compute hosts up starts when not told.
const DefaultHosts = 4

// MaxHosts bounds the host count: host i takes the addresses .(100+i).
const MaxHosts = 50

// Ports of the control plane, on ControlAddr. They are OpenStack's usual
// ports, so the catalog reads like a real cloud's.
const (
	KeystonePort  = 5000
	PlacementPort = 8778
	NovaPort      = 8774
	GlancePort    = 9292 // the Glance stand-in (Stubs)
	NeutronPort   = 9696 // the Neutron stand-in (Stubs)
	MasakariPort  = 15868
	RabbitPort    = 5697  // the cloud's own RabbitMQ (not 5672: the machine may run one)
	RabbitDist    = 25697 // its Erlang distribution port, on loopback
	EPMDPort      = 24369 // its own epmd, on loopback (not 4369)
)

// ControlAddr is where every control plane service listens: the lab host's
// address on the management bridge, which the compute hosts reach.
var ControlAddr = lab.HostMgmt

// Region is the cloud's only region.
const Region = "RegionOne"

// ImageID is the one image the Glance stand-in serves.
const (
	ImageID   = "00000000-0000-0000-0000-00000000f001"
	ImageName = "lab-image"
)

// FlavorName is the flavor up creates: small enough that each host takes
// a couple dozen servers, big enough that the scheduler's RAM weigher
// spreads them.
const (
	FlavorName = "m1.lab"
	FlavorRAM  = 256 // MB
	FlavorCPUs = 1
	FlavorDisk = 1 // GB
)

// Driver is the nova-compute virt driver: Nova's fake driver with the
// capacity of a modest machine (10 vCPUs, 8 GiB, 1 TB), so placement and the
// scheduler see real numbers and spread servers.
const Driver = "fake.MediumFakeDriver"

// Errors callers act on.
var (
	ErrUnknownHost = errors.New("unknown compute host")
	ErrNotUp       = errors.New("the compute lab is not up")
)

// Host is one fake compute host: a network namespace with a link on the
// management network (eth0) and one on the storage network (eth1), running
// nova-compute with host = Name.
type Host struct {
	Name    string // cmpN
	Index   int    // N, from 1
	Mgmt    netip.Addr
	Storage netip.Addr
}

// NewHost returns compute host i (1-based): cmpI at 10.251.0.(100+i) and
// 10.251.1.(100+i), far from the controllers (.11, .12), the VIP (.10) and
// the lab host (.1).
func NewHost(i int) Host {
	m, s := lab.MgmtPrefix.Addr().As4(), lab.StoragePrefix.Addr().As4()
	m[3], s[3] = byte(100+i), byte(100+i)
	return Host{Name: "cmp" + strconv.Itoa(i), Index: i, Mgmt: netip.AddrFrom4(m), Storage: netip.AddrFrom4(s)}
}

// Hosts returns cmp1..cmpN.
func Hosts(n int) []Host {
	hs := make([]Host, 0, n)
	for i := 1; i <= n; i++ {
		hs = append(hs, NewHost(i))
	}
	return hs
}

// ParseHost returns the host named name (cmpN, 1 <= N <= MaxHosts).
func ParseHost(name string) (Host, error) {
	n, err := strconv.Atoi(strings.TrimPrefix(name, "cmp"))
	if !strings.HasPrefix(name, "cmp") || err != nil || n < 1 || n > MaxHosts || "cmp"+strconv.Itoa(n) != name {
		return Host{}, fmt.Errorf("%w: %q (hosts are cmp1, cmp2, ...)", ErrUnknownHost, name)
	}
	return NewHost(n), nil
}

// Namespace is the host's network namespace.
func (h Host) Namespace() string { return "hccmp-" + h.Name }

// Veth is the host-side end of h's link l (LinkMgmt or LinkStorage) on
// the lab bridge; its peer in the namespace is eth0 (mgmt) or eth1 (storage).
func (h Host) Veth(l lab.Link) string { return fmt.Sprintf("hccmp-%s-%c", h.Name, l[0]) }

// Runner runs one external command (internal/runner.Exec in production).
type Runner interface {
	Run(ctx context.Context, name string, args ...string) ([]byte, error)
}

// Cloud drives the compute lab whose files live in Dir.
type Cloud struct {
	Dir string
	Run Runner
	Log *slog.Logger
	// LabBinary is the haconf-lab binary: it serves the Neutron and Glance
	// stand-ins (haconf-lab compute stubs).
	LabBinary string
	// HaconfBinary is the haconf binary: its compute agent runs on every
	// host and its compute controller on the lab host (UpOptions.HA).
	HaconfBinary string
}

func (c *Cloud) logger() *slog.Logger {
	if c.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Log
}

// Paths inside the lab directory. state/ is the warm state (databases,
// keys, secrets), kept across down and up; run/ and log/ are per run.
func (c *Cloud) path(elem ...string) string {
	return filepath.Join(append([]string{c.Dir}, elem...)...)
}
func (c *Cloud) stateDir() string           { return c.path("state") }
func (c *Cloud) etcDir() string             { return c.path("etc") }
func (c *Cloud) runDir() string             { return c.path("run") }
func (c *Cloud) logDir() string             { return c.path("log") }
func (c *Cloud) hostDir(h Host) string      { return c.path("hosts", h.Name) }
func (c *Cloud) mysqlSocket() string        { return c.path("run", "mysql.sock") }
func (c *Cloud) settingsFile() string       { return c.path("cloud.json") }
func (c *Cloud) secretsFile() string        { return c.path("state", "secrets.json") }
func (c *Cloud) pidFile(name string) string { return c.path("run", name+".pid") }
func (c *Cloud) logFile(name string) string { return c.path("log", name+".log") }
func (c *Cloud) powerFile(h Host) string    { return c.path("hosts", h.Name, "power") }
