package agents

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/haconf/haconf/pacemaker"
	"github.com/haconf/haconf/vip"
)

// VIP is the OCF resource agent for the virtual IP (ocf:haconf:vip): it
// adds the address with `ip` and announces it with gratuitous ARP, so
// clients switch at once instead of waiting for their ARP entries to
// expire. It does what ocf:heartbeat:IPaddr2 does for the one case haconf
// needs (an IPv4 address on a named or discovered NIC) in one process.
type VIP struct {
	Prefix   netip.Prefix
	NIC      string // empty: the interface with an address in Prefix
	ARPCount int
	Run      Runner
	// Announce sends count gratuitous ARPs for addr on nic.
	Announce func(nic *net.Interface, addr netip.Addr, count int) error

	err error // parameter error, reported by Validate
}

// VIPFromEnv reads the agent's parameters from Pacemaker's environment:
// ip, cidr_netmask, nic, arp_count (the names IPaddr2 uses).
func VIPFromEnv(env pacemaker.OCFEnv, run Runner) *VIP {
	a := &VIP{NIC: env.Param("nic", ""), Run: run, Announce: vip.Announce}
	ip, bits := env.Param("ip", ""), env.Param("cidr_netmask", "32")
	addr, err := netip.ParseAddr(ip)
	n, err2 := strconv.Atoi(bits)
	switch {
	case err != nil || !addr.Is4():
		a.err = pacemaker.OCFFail(pacemaker.OCFErrConfigured, "parameter ip=%q: not an IPv4 address", ip)
	case err2 != nil || n < 1 || n > 32:
		a.err = pacemaker.OCFFail(pacemaker.OCFErrConfigured, "parameter cidr_netmask=%q: must be 1-32", bits)
	default:
		a.Prefix = netip.PrefixFrom(addr, n)
	}
	a.ARPCount, err = strconv.Atoi(env.Param("arp_count", "5"))
	if err != nil || a.ARPCount < 0 || a.ARPCount > 100 {
		a.err = pacemaker.OCFFail(pacemaker.OCFErrConfigured, "parameter arp_count=%q: must be 0-100", env.Param("arp_count", ""))
	}
	return a
}

// MetaData implements pacemaker.Agent.
func (a *VIP) MetaData() string {
	return pacemaker.OCFMetaData{
		Name:  "vip",
		Short: "Virtual IPv4 address with gratuitous ARP (haconf)",
		Long:  "Adds an IPv4 address to a network interface and announces it with gratuitous ARP.",
		Params: []pacemaker.OCFParam{
			{Name: "ip", Short: "IPv4 address", Required: true},
			{Name: "cidr_netmask", Short: "prefix length", Default: "32"},
			{Name: "nic", Short: "interface (default: the one with an address in the prefix)"},
			{Name: "arp_count", Short: "gratuitous ARPs sent on start", Default: "5"},
		},
		Start: 20 * time.Second, Stop: 20 * time.Second,
		Monitor: 20 * time.Second, MonitorInterval: 5 * time.Second,
	}.String()
}

// Validate implements pacemaker.Agent.
func (a *VIP) Validate() error { return a.err }

// Monitor implements pacemaker.Agent.
func (a *VIP) Monitor(ctx context.Context) error {
	if _, ok := a.holder(); ok {
		return nil
	}
	return pacemaker.ErrNotRunning
}

// Start implements pacemaker.Agent.
func (a *VIP) Start(ctx context.Context) error {
	ifc, ok := a.holder()
	if !ok {
		var err error
		if ifc, err = a.iface(); err != nil {
			return err
		}
		if _, err := a.Run.Run(ctx, "ip", "-4", "addr", "add", a.Prefix.String(), "dev", ifc.Name); err != nil {
			return err
		}
	}
	if a.ARPCount > 0 {
		// The address is up; a missed announcement only delays clients
		// with a stale ARP entry. Not worth a failed start.
		_ = a.Announce(ifc, a.Prefix.Addr(), a.ARPCount)
	}
	return nil
}

// Stop implements pacemaker.Agent.
func (a *VIP) Stop(ctx context.Context) error {
	ifc, ok := a.holder()
	if !ok {
		return nil
	}
	_, err := a.Run.Run(ctx, "ip", "-4", "addr", "del", a.Prefix.String(), "dev", ifc.Name)
	if _, still := a.holder(); still {
		return fmt.Errorf("%s still on %s: %v", a.Prefix.Addr(), ifc.Name, err)
	}
	return nil
}

// holder returns the interface that has the address, if any.
func (a *VIP) holder() (*net.Interface, bool) {
	ifcs, err := net.Interfaces()
	if err != nil {
		return nil, false
	}
	for i := range ifcs {
		if a.NIC != "" && ifcs[i].Name != a.NIC {
			continue
		}
		for _, p := range addrs(&ifcs[i]) {
			if p.Addr() == a.Prefix.Addr() {
				return &ifcs[i], true
			}
		}
	}
	return nil, false
}

// iface is the NIC parameter, or the interface with another address in
// the VIP's prefix.
func (a *VIP) iface() (*net.Interface, error) {
	if a.NIC != "" {
		ifc, err := net.InterfaceByName(a.NIC)
		if err != nil {
			return nil, pacemaker.OCFFail(pacemaker.OCFErrInstalled, "parameter nic=%q: %v", a.NIC, err)
		}
		return ifc, nil
	}
	ifcs, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	for i := range ifcs {
		for _, p := range addrs(&ifcs[i]) {
			if p.Addr().Is4() && p.Masked() == a.Prefix.Masked() {
				return &ifcs[i], nil
			}
		}
	}
	return nil, pacemaker.OCFFail(pacemaker.OCFErrInstalled, "no interface has an address in %s; set the nic parameter (vip.interface)", a.Prefix.Masked())
}

func addrs(ifc *net.Interface) []netip.Prefix {
	as, err := ifc.Addrs()
	if err != nil {
		return nil
	}
	var out []netip.Prefix
	for _, x := range as {
		if n, ok := x.(*net.IPNet); ok {
			if p, err := netip.ParsePrefix(n.String()); err == nil {
				out = append(out, netip.PrefixFrom(p.Addr().Unmap(), p.Bits()))
			}
		}
	}
	return out
}
