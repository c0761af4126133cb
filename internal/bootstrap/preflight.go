package bootstrap

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/haconf/haconf/internal/config"
)

// Host is what preflight needs from the machine it checks.
type Host interface {
	Run(ctx context.Context, name string, args ...string) ([]byte, error)
	ReadFile(path string) ([]byte, error)
	Stat(path string) (fs.FileInfo, error)
	Hostname() (string, error)
}

// Check is one preflight result.
type Check struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
	Fix    string `json:"fix,omitempty"` // what the operator should do when !OK
}

// Packages the controllers need.
var Packages = []string{
	"corosync", "pacemaker", "pacemaker-cli-utils", "drbd-utils", "resource-agents",
	"fence-agents", "haproxy", "mariadb-server", "rabbitmq-server", "lvm2",
	"iputils-ping", // preflight pings the peer on both links
}

// ErrPreflight means at least one check failed; nothing was changed.
var ErrPreflight = errors.New("preflight failed; nothing was changed")

// Preflight runs every check for node and returns them all; err wraps
// ErrPreflight when any failed.
func Preflight(ctx context.Context, h Host, c *config.Config, node string) ([]Check, error) {
	self, ok := c.Node(node)
	if !ok {
		return nil, fmt.Errorf("node %q is not in %s (%s)", node, c.File, strings.Join(c.NodeNames(), ", "))
	}
	peer, _ := c.Peer(node)
	checks := []Check{
		checkHostname(h, node),
		checkPackages(ctx, h),
		checkDRBDModule(ctx, h),
		checkDisk(h, c.DRBD.Disk),
		checkAddresses(ctx, h, self),
		checkPeer(ctx, h, peer.Name, "management", peer.Management),
		checkPeer(ctx, h, peer.Name, "storage", peer.Storage),
		checkMultipath(ctx, h),
	}
	for _, ch := range checks {
		if !ch.OK {
			return checks, ErrPreflight
		}
	}
	return checks, nil
}

func checkHostname(h Host, node string) Check {
	c := Check{Name: "hostname"}
	name, err := h.Hostname()
	name = strings.SplitN(name, ".", 2)[0]
	switch {
	case err != nil:
		c.Detail = err.Error()
	case name != node:
		c.Detail = fmt.Sprintf("this host is %q, bootstrapping as %q", name, node)
		c.Fix = fmt.Sprintf("hostnamectl set-hostname %s (corosync and Pacemaker identify nodes by name), or pass the right --node", node)
	default:
		c.OK, c.Detail = true, name
	}
	return c
}

func checkPackages(ctx context.Context, h Host) Check {
	c := Check{Name: "packages"}
	var unavailable, missing []string
	for _, p := range Packages {
		out, err := h.Run(ctx, "dpkg-query", "-W", "-f=${Status}", p)
		if err == nil && strings.HasSuffix(strings.TrimSpace(string(out)), "install ok installed") {
			continue
		}
		missing = append(missing, p)
		pol, err := h.Run(ctx, "apt-cache", "policy", p)
		if err != nil || !strings.Contains(string(pol), "Candidate:") || strings.Contains(string(pol), "Candidate: (none)") {
			unavailable = append(unavailable, p)
		}
	}
	switch {
	case len(unavailable) > 0:
		c.Detail = "not installed and not installable: " + strings.Join(unavailable, " ")
		c.Fix = "enable the Debian main repository (or a mirror that has them) and run apt-get update"
	case len(missing) > 0:
		c.OK, c.Detail = true, "will install: "+strings.Join(missing, " ")
	default:
		c.OK, c.Detail = true, "all installed"
	}
	return c
}

func checkDRBDModule(ctx context.Context, h Host) Check {
	c := Check{Name: "drbd module"}
	if b, err := h.ReadFile("/proc/drbd"); err == nil {
		c.OK, c.Detail = true, "loaded: "+firstLine(b)
		return c
	}
	if out, err := h.Run(ctx, "modinfo", "-F", "version", "drbd"); err == nil {
		c.OK, c.Detail = true, "available, version "+strings.TrimSpace(string(out))
		return c
	}
	c.Detail = "no DRBD kernel module loaded or installed"
	c.Fix = "install a kernel with DRBD (Debian's stock kernels have 8.4) or LINBIT's drbd-dkms for DRBD 9"
	return c
}

func checkDisk(h Host, disk string) Check {
	c := Check{Name: "backing disk"}
	st, err := h.Stat(disk)
	if err != nil {
		c.Detail = fmt.Sprintf("%s: %v", disk, err)
		c.Fix = fmt.Sprintf("create it (e.g. lvcreate -L 20G -n %s VG) or fix drbd.disk in haconf.yaml", lastPart(disk))
		return c
	}
	if st.Mode()&fs.ModeDevice == 0 {
		c.Detail = disk + " is not a block device"
		c.Fix = "drbd.disk must name a block device (an LVM volume is best: haconf can snapshot it)"
		return c
	}
	if mounts, err := h.ReadFile("/proc/mounts"); err == nil {
		for _, l := range strings.Split(string(mounts), "\n") {
			if f := strings.Fields(l); len(f) > 1 && f[0] == disk {
				c.Detail = fmt.Sprintf("%s is mounted on %s", disk, f[1])
				c.Fix = "unmount it and remove it from /etc/fstab: DRBD must own the device"
				return c
			}
		}
	}
	c.OK, c.Detail = true, disk+" is a block device, not mounted"
	return c
}

type ipAddr struct {
	IfName   string `json:"ifname"`
	AddrInfo []struct {
		Local string `json:"local"`
	} `json:"addr_info"`
}

func checkAddresses(ctx context.Context, h Host, self config.Node) Check {
	c := Check{Name: "cluster networks"}
	out, err := h.Run(ctx, "ip", "-j", "addr", "show")
	if err != nil {
		c.Detail = err.Error()
		return c
	}
	var links []ipAddr
	if err := json.Unmarshal(out, &links); err != nil {
		c.Detail = "cannot read ip -j addr: " + err.Error()
		return c
	}
	have := map[string]string{}
	for _, l := range links {
		for _, a := range l.AddrInfo {
			have[a.Local] = l.IfName
		}
	}
	var missing []string
	for _, a := range []struct{ net, ip string }{{"management", self.Management}, {"storage", self.Storage}} {
		if _, ok := have[a.ip]; !ok {
			missing = append(missing, fmt.Sprintf("%s address %s", a.net, a.ip))
		}
	}
	if len(missing) > 0 {
		c.Detail = "not configured on any interface: " + strings.Join(missing, ", ")
		c.Fix = "configure the addresses from nodes[] in haconf.yaml on this controller's interfaces"
		return c
	}
	c.OK = true
	c.Detail = fmt.Sprintf("management %s on %s, storage %s on %s", self.Management, have[self.Management], self.Storage, have[self.Storage])
	return c
}

func checkPeer(ctx context.Context, h Host, peer, network, addr string) Check {
	c := Check{Name: "peer " + network}
	if _, err := h.Run(ctx, "ping", "-c", "1", "-W", "2", addr); err != nil {
		c.Detail = fmt.Sprintf("%s (%s) does not answer on the %s network", peer, addr, network)
		c.Fix = fmt.Sprintf("check the %s link, firewall (ICMP, corosync UDP 5405, DRBD TCP) and that %s is up", network, peer)
		return c
	}
	c.OK, c.Detail = true, fmt.Sprintf("%s answers at %s", peer, addr)
	return c
}

func checkMultipath(ctx context.Context, h Host) Check {
	c := Check{Name: "multipath"}
	if _, err := h.Run(ctx, "pidof", "multipathd"); err != nil {
		c.OK, c.Detail = true, "multipathd not running"
		return c
	}
	conf, _ := h.ReadFile("/etc/multipath.conf")
	if strings.Contains(string(conf), "drbd") {
		c.OK, c.Detail = true, "multipathd running; drbd devices blacklisted"
		return c
	}
	c.Detail = "multipathd is running and may grab DRBD devices"
	c.Fix = "add to /etc/multipath.conf: blacklist { devnode \"^drbd[0-9]+\" } and reload multipathd"
	return c
}

func firstLine(b []byte) string { return strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0]) }

func lastPart(p string) string { return p[strings.LastIndex(p, "/")+1:] }
