package cloud

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/haconf/haconf/lab"
)

// The compute hosts sit on the controller lab's two bridges, so that a
// process on the controllers reaches them and they reach the control plane
// at ControlAddr. Whichever lab comes up first creates a bridge; whichever
// goes down last deletes it: a lab's down leaves a bridge that still has
// ports of the other lab (the controllers' taps hclab-ctlN-*, the hosts'
// veths hccmp-cmpN-*).

// bridge is one lab network: its bridge, the lab host's address on it and
// the link name of each host's end (in its namespace).
type bridge struct {
	Name   string
	Link   lab.Link
	Addr   string // the lab host's address with prefix length
	Device string // the host's interface in its namespace
}

var bridges = []bridge{
	{lab.BridgeMgmt, lab.LinkMgmt, lab.HostMgmt.String() + "/24", "eth0"},
	{lab.BridgeStorage, lab.LinkStorage, lab.HostStorage.String() + "/24", "eth1"},
}

// ipLink is one entry of `ip -j link show`.
type ipLink struct {
	Name   string   `json:"ifname"`
	Master string   `json:"master"`
	Flags  []string `json:"flags"`
}

func (k ipLink) up() bool {
	for _, f := range k.Flags {
		if f == "UP" {
			return true
		}
	}
	return false
}

// parseIPLinks parses `ip -j link show` into a map by name.
func parseIPLinks(out []byte) (map[string]ipLink, error) {
	var all []ipLink
	if err := json.Unmarshal(out, &all); err != nil {
		return nil, fmt.Errorf("parse ip -j link show: %w", err)
	}
	m := make(map[string]ipLink, len(all))
	for _, k := range all {
		m[k.Name] = k
	}
	return m, nil
}

func (c *Cloud) links(ctx context.Context) (map[string]ipLink, error) {
	out, err := c.Run.Run(ctx, "ip", "-j", "link", "show")
	if err != nil {
		return nil, err
	}
	return parseIPLinks(out)
}

// namespaceExists reports whether the host's network namespace exists.
func namespaceExists(h Host) bool {
	_, err := os.Stat("/run/netns/" + h.Namespace())
	return err == nil
}

// setupBridges creates the lab bridges that are missing and gives the lab
// host its addresses on them.
func (c *Cloud) setupBridges(ctx context.Context) error {
	have, err := c.links(ctx)
	if err != nil {
		return err
	}
	for _, b := range bridges {
		if _, ok := have[b.Name]; !ok {
			if err := c.ip(ctx, "link", "add", "name", b.Name, "type", "bridge"); err != nil {
				return err
			}
			c.logger().Info("created lab bridge", "bridge", b.Name)
		}
		if err := c.ip(ctx, "addr", "replace", b.Addr, "dev", b.Name); err != nil {
			return err
		}
		if err := c.ip(ctx, "link", "set", "dev", b.Name, "up"); err != nil {
			return err
		}
	}
	return nil
}

// setupHostNet creates h's namespace and its two links (up), leaving what
// exists as it is.
func (c *Cloud) setupHostNet(ctx context.Context, h Host) error {
	ns := h.Namespace()
	if !namespaceExists(h) {
		if err := c.ip(ctx, "netns", "add", ns); err != nil {
			return err
		}
	}
	have, err := c.links(ctx)
	if err != nil {
		return err
	}
	for _, b := range bridges {
		veth := h.Veth(b.Link)
		if _, ok := have[veth]; !ok {
			if err := c.ip(ctx, "link", "add", "name", veth, "type", "veth", "peer", "name", b.Device, "netns", ns); err != nil {
				return err
			}
		}
		addr := h.Mgmt
		if b.Link == lab.LinkStorage {
			addr = h.Storage
		}
		for _, args := range [][]string{
			{"link", "set", "dev", veth, "master", b.Name},
			{"link", "set", "dev", veth, "up"},
			{"-n", ns, "addr", "replace", addr.String() + "/24", "dev", b.Device},
			{"-n", ns, "link", "set", "dev", b.Device, "up"},
		} {
			if err := c.ip(ctx, args...); err != nil {
				return err
			}
		}
	}
	return c.ip(ctx, "-n", ns, "link", "set", "dev", "lo", "up")
}

// setLinks takes h's links (the host side of each veth) up or down: the
// namespace's end loses its carrier, as when a cable is pulled.
func (c *Cloud) setLinks(ctx context.Context, h Host, which lab.Link, up bool) error {
	state := "down"
	if up {
		state = "up"
	}
	for _, b := range bridges {
		if which != lab.LinkAll && which != b.Link {
			continue
		}
		if err := c.ip(ctx, "link", "set", "dev", h.Veth(b.Link), state); err != nil {
			return fmt.Errorf("%s %s link %s: %w", h.Name, b.Link, state, err)
		}
	}
	return nil
}

// teardownHostNet deletes h's links and namespace. The links go first: a
// namespace lives on (with its links) after ip netns del while anything
// holds it, such as the orphaned TCP connections of a crashed host's
// processes, retransmitting their FIN on a link that is down.
func (c *Cloud) teardownHostNet(ctx context.Context, h Host) error {
	have, err := c.links(ctx)
	if err != nil {
		return err
	}
	for _, b := range bridges {
		if _, ok := have[h.Veth(b.Link)]; ok {
			if err := c.ip(ctx, "link", "del", "dev", h.Veth(b.Link)); err != nil {
				return err
			}
		}
	}
	if !namespaceExists(h) {
		return nil
	}
	return c.ip(ctx, "netns", "del", h.Namespace())
}

// teardownBridges deletes each lab bridge that no port is attached to any
// more, unless the controller lab is up: its taps (hclab-ctlN-*) exist,
// even when a partition took them off the bridge.
func (c *Cloud) teardownBridges(ctx context.Context) error {
	have, err := c.links(ctx)
	if err != nil {
		return err
	}
	for name := range have {
		if strings.HasPrefix(name, "hclab-") && name != lab.BridgeMgmt && name != lab.BridgeStorage {
			c.logger().Info("leaving the lab bridges to the controller lab", "interface", name)
			return nil
		}
	}
	for _, b := range bridges {
		if _, ok := have[b.Name]; !ok {
			continue
		}
		if ports := portsOf(have, b.Name); len(ports) > 0 {
			c.logger().Info("leaving lab bridge: it has other ports", "bridge", b.Name, "ports", strings.Join(ports, ","))
			continue
		}
		if err := c.ip(ctx, "link", "del", "dev", b.Name); err != nil {
			return err
		}
		c.logger().Info("deleted lab bridge", "bridge", b.Name)
	}
	return nil
}

// portsOf lists the interfaces attached to bridge.
func portsOf(links map[string]ipLink, bridge string) []string {
	var ports []string
	for _, k := range links {
		if k.Master == bridge {
			ports = append(ports, k.Name)
		}
	}
	return ports
}

// hostLinks reports whether each of h's links is up (false when missing).
func hostLinks(links map[string]ipLink, h Host) (mgmt, storage bool) {
	return links[h.Veth(lab.LinkMgmt)].up(), links[h.Veth(lab.LinkStorage)].up()
}

// namespacePids lists the processes in h's network namespace.
func (c *Cloud) namespacePids(ctx context.Context, h Host) ([]int, error) {
	if !namespaceExists(h) {
		return nil, nil
	}
	out, err := c.Run.Run(ctx, "ip", "netns", "pids", h.Namespace())
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

func (c *Cloud) ip(ctx context.Context, args ...string) error {
	if _, err := c.Run.Run(ctx, "ip", args...); err != nil {
		return fmt.Errorf("lab network: %w", err)
	}
	return nil
}
