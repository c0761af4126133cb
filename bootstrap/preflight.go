package bootstrap

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/haconf/haconf/clock"
	"github.com/haconf/haconf/internal/config"
	"github.com/haconf/haconf/internal/runner"
	"github.com/haconf/haconf/pacemaker"
	"github.com/haconf/haconf/rabbitmq"
	"github.com/haconf/haconf/watchdog"
)

// Host is what preflight needs from the machine it checks.
type Host interface {
	Run(ctx context.Context, name string, args ...string) ([]byte, error)
	// RunCmd runs a command with stdin: the fence agents read their
	// options, passwords among them, there.
	RunCmd(ctx context.Context, c runner.Cmd) ([]byte, error)
	ReadFile(path string) ([]byte, error)
	Stat(path string) (fs.FileInfo, error)
	Hostname() (string, error)
}

// Check is one preflight result: OK, failed, or Unknown (it could not be
// made here, e.g. a tool bootstrap installs is missing), which does not
// fail preflight.
type Check struct {
	Name    string `json:"name"`
	OK      bool   `json:"ok"`
	Unknown bool   `json:"unknown"`
	Detail  string `json:"detail"`
	Fix     string `json:"fix,omitempty"` // what the operator should do when !OK
}

// Failed reports whether the check failed (not OK, and not unknown).
func (c Check) Failed() bool { return !c.OK && !c.Unknown }

// Packages the controllers need.
var Packages = []string{
	"corosync", "pacemaker", "pacemaker-cli-utils", "drbd-utils", "resource-agents",
	"fence-agents", "haproxy", "mariadb-server", "rabbitmq-server", "lvm2",
	"iputils-ping",      // preflight pings the peer on both links
	"iputils-clockdiff", // preflight and status measure the peer's clock
	"ipmitool",          // fence_ipmilan runs it (fence-agents does not depend on it)
}

// ErrPreflight means at least one check failed; nothing was changed.
var ErrPreflight = errors.New("preflight failed; nothing was changed")

// Preflight runs every check for node and returns them all; err wraps
// ErrPreflight when any failed. secrets (nil when there is no secrets file
// yet) gives the fence devices' passwords bootstrap will install.
func Preflight(ctx context.Context, h Host, c *config.Config, node string, secrets *Secrets) ([]Check, error) {
	self, ok := c.Node(node)
	if !ok {
		return nil, fmt.Errorf("node %q is not in %s (%s)", node, c.File, strings.Join(c.NodeNames(), ", "))
	}
	peer, _ := c.Peer(node)
	checks := []Check{
		checkHostname(h, node),
		checkPackages(ctx, h),
		checkRabbitMQVersion(ctx, h, c.RabbitMQ.Mode),
		checkDRBDModule(ctx, h),
		checkDisk(h, c.DRBD.Disk),
		checkAddresses(ctx, h, self),
		checkPeer(ctx, h, peer.Name, "management", peer.Management),
		checkPeer(ctx, h, peer.Name, "storage", peer.Storage),
		checkMultipath(ctx, h),
		checkClockSync(ctx, h),
		checkPeerClock(ctx, h, peer),
	}
	checks = append(checks, checkFencing(ctx, h, c, secrets)...)
	for _, ch := range checks {
		if ch.Failed() {
			return checks, ErrPreflight
		}
	}
	return checks, nil
}

func checkHostname(h Host, node string) Check {
	c := Check{Name: "hostname"}
	name, err := h.Hostname()
	name = ShortName(name)
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

// checkRabbitMQVersion asks whether the configured RabbitMQ mode runs on
// the release installed (or about to be): mirrored mode on 4.x would
// leave every queue with one copy, quorum mode's rabbitmq.conf stops a
// broker older than 3.13.3 at its start.
func checkRabbitMQVersion(ctx context.Context, h Host, mode string) Check {
	c := Check{Name: "rabbitmq version"}
	v, installed, err := rabbitmq.PackageVersion(ctx, h)
	if err != nil {
		c.Unknown, c.Detail = true, err.Error()
		return c
	}
	which := "installed"
	if !installed {
		which = "to be installed"
	}
	if err := rabbitmq.CheckMode(mode, v); err != nil {
		c.Detail = fmt.Sprintf("%s (%s)", err, which)
		c.Fix = "change rabbitmq.mode in haconf.yaml, or install a RabbitMQ release that runs it"
		return c
	}
	c.OK, c.Detail = true, fmt.Sprintf("RabbitMQ %s (%s) runs mode %s", v, which, mode)
	return c
}

func checkDRBDModule(ctx context.Context, h Host) Check {
	c := Check{Name: "drbd module"}
	if b, err := h.ReadFile(procDRBD); err == nil {
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

func checkClockSync(ctx context.Context, h Host) Check {
	c := Check{Name: "clock sync"}
	s := clock.ReadSync(ctx, h)
	switch s.State {
	case clock.Synchronised:
		c.OK, c.Detail = true, fmt.Sprintf("synchronised (%s: %s)", s.Tool, s.Detail)
	case clock.NotSynchronised:
		c.Detail = fmt.Sprintf("not synchronised (%s: %s)", s.Tool, s.Detail)
		c.Fix = "run an NTP client that disciplines the clock, with the same servers on both controllers (chrony, or systemd-timesyncd: timedatectl set-ntp true), and wait until it is synchronised"
	default:
		c.Unknown, c.Detail = true, "unknown: "+s.Detail
		c.Fix = "install chrony (or run systemd-timesyncd) so that haconf can tell"
	}
	return c
}

func checkPeerClock(ctx context.Context, h Host, peer config.Node) Check {
	c := Check{Name: "peer clock"}
	off, err := clock.PeerOffset(ctx, h, peer.Management)
	if err != nil {
		c.Unknown, c.Detail = true, "unknown: "+err.Error()
		c.Fix = "clockdiff (iputils-clockdiff, which bootstrap installs) asks the peer's kernel with ICMP timestamp requests: install it, and allow ICMP types 13 and 14 between the controllers' management addresses"
		return c
	}
	if off >= clock.MaxPeerOffset || off <= -clock.MaxPeerOffset {
		c.Detail = fmt.Sprintf("%s's clock is %s (they must be less than %s apart)", peer.Name, clock.Relative(off, "this one's"), clock.MaxPeerOffset)
		c.Fix = fmt.Sprintf("synchronise both controllers to the same NTP servers (see clock sync on both); beyond %s the watchdogs refuse each other's signed requests", watchdog.MaxClockSkew)
		return c
	}
	c.OK, c.Detail = true, fmt.Sprintf("%s's clock is %s (clockdiff to %s)", peer.Name, clock.Relative(off, "this one's"), peer.Management)
	return c
}

// checkFencing asks each controller's fence device for its power state,
// as Pacemaker's fencer will once the pair runs: with the password the
// secrets file holds for it (what bootstrap installs), else with the
// password file already on this node. It also checks that every compute
// host's fence password has a source.
func checkFencing(ctx context.Context, h Host, c *config.Config, s *Secrets) []Check {
	files, err := fencePasswordFiles(c, s)
	var checks []Check
	if pw := checkFencePasswords(h, files, err, s); pw.Name != "" {
		checks = append(checks, pw)
	}
	switch c.Fencing.Type {
	case pacemaker.FenceNone:
		return append(checks, Check{Name: "fencing", OK: true, Detail: "fencing.type none (i_accept_no_fencing): no fence device to ask; the pair runs without fencing (UNSAFE)"})
	case pacemaker.FenceSBD:
		return append(checks, Check{Name: "fencing", OK: true, Detail: "sbd: no fence device to ask: SBD fences through its shared disks and each node's watchdog"})
	}
	byPath := map[string]fencePasswordFile{}
	for _, f := range files {
		byPath[f.Path] = f
	}
	for _, d := range c.Fencing.Devices(c.NodeNames()) {
		checks = append(checks, checkFenceDevice(ctx, h, d, byPath[d.PasswordFile], s))
	}
	return checks
}

// checkFencePasswords checks what the controllers' device checks do not:
// the secrets file names no file haconf.yaml lacks, and each compute
// host's fence password is in the secrets file or on this node. Its Name
// is "" when there is nothing to check.
func checkFencePasswords(h Host, files []fencePasswordFile, err error, s *Secrets) Check {
	ch := Check{Name: "fence passwords"}
	var problems []string
	if err != nil {
		problems = append(problems, strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	compute := 0
	for _, f := range files {
		if !strings.HasPrefix(f.Keys[0], ComputeFencePasswordsKey+".") {
			continue
		}
		compute++
		if f.Password != "" {
			continue
		}
		if p := passwordFileProblem(h, f.Path); p != "" {
			problems = append(problems, fmt.Sprintf("%s (the password of %s) %s and %s has no %s", f.Path, f.For, p, secretsName(s), f.keyList()))
		}
	}
	switch {
	case len(problems) > 0:
		ch.Detail = strings.Join(problems, "; ")
		ch.Fix = fmt.Sprintf("put each fence password in the secrets file under %s.<host> (bootstrap installs it, mode 0600, where haconf.yaml names its file)", ComputeFencePasswordsKey)
	case compute > 0:
		ch.OK, ch.Detail = true, fmt.Sprintf("%d compute host fence password file(s): each in the secrets file or on this node", compute)
	default:
		return Check{}
	}
	return ch
}

// passwordFileProblem says what is wrong with a password file on this
// node ("" when nothing is).
func passwordFileProblem(h Host, path string) string {
	st, err := h.Stat(path)
	switch {
	case err != nil:
		return "does not exist"
	case st.Mode().Perm()&0o077 != 0:
		return fmt.Sprintf("is readable by group or others (mode %v)", st.Mode().Perm())
	}
	return ""
}

func checkFenceDevice(ctx context.Context, h Host, d pacemaker.StonithDevice, f fencePasswordFile, s *Secrets) Check {
	c := Check{Name: "fence " + d.Target}
	where := d.ID + " (" + d.Agent
	for _, p := range d.Params {
		if p.Name == "ip" || p.Name == "url" {
			where += " at " + p.Value
		}
	}
	where += ")"
	password, how := "", ""
	if d.PasswordFile != "" {
		password, how = f.Password, " (password from "+secretsName(s)+")"
		if password == "" {
			if p := passwordFileProblem(h, d.PasswordFile); p != "" {
				c.Detail = fmt.Sprintf("no password for %s: %s %s and %s has no %s", where, d.PasswordFile, p, secretsName(s), f.keyList())
				c.Fix = fmt.Sprintf("put the BMC password in the secrets file as %s.%s (bootstrap installs it in %s, mode 0600)", FencePasswordsKey, d.Target, d.PasswordFile)
				return c
			}
			how = " (password from " + d.PasswordFile + ")"
		}
	}
	st := d.Status(ctx, h, password)
	switch {
	case st.Power != "":
		c.OK, c.Detail = true, fmt.Sprintf("%s answers: %s is powered %s%s", where, d.Target, st.Power, how)
	case st.Missing:
		c.Unknown, c.Detail = true, fmt.Sprintf("unknown: %s: %s cannot be asked here", st.Error, d.ID)
		c.Fix = "install fence-agents and ipmitool (bootstrap does), then run haconf preflight again"
	default:
		c.Detail = where + ": " + st.Error + how
		c.Fix = fmt.Sprintf("Pacemaker cannot fence %s until this answers: check the device's address, user and password (fencing in haconf.yaml, the secrets file) and that it is reachable from this node", d.Target)
		if d.Agent == pacemaker.FenceLabAgent {
			c.Fix = fmt.Sprintf("Pacemaker cannot fence %s until this answers: check that the lab host's fence daemon runs and answers at fencing.lab.url", d.Target)
		}
	}
	return c
}

func firstLine(b []byte) string { return strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0]) }

func lastPart(p string) string { return p[strings.LastIndex(p, "/")+1:] }
