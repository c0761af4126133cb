package lab

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
)

// link is one entry of `ip -j link show`.
type link struct {
	Name      string   `json:"ifname"`
	Master    string   `json:"master"`
	OperState string   `json:"operstate"`
	Flags     []string `json:"flags"`
}

func (k link) up() bool {
	for _, f := range k.Flags {
		if f == "UP" {
			return true
		}
	}
	return false
}

// links returns the host's interfaces whose names start with "hclab-".
func (l *Lab) links(ctx context.Context) (map[string]link, error) {
	out, err := l.Run.Run(ctx, "ip", "-j", "link", "show")
	if err != nil {
		return nil, err
	}
	return parseLinks(out)
}

func parseLinks(out []byte) (map[string]link, error) {
	var all []link
	if err := json.Unmarshal(out, &all); err != nil {
		return nil, fmt.Errorf("parse ip -j link show: %w", err)
	}
	m := map[string]link{}
	for _, k := range all {
		if strings.HasPrefix(k.Name, "hclab-") {
			m[k.Name] = k
		}
	}
	return m, nil
}

// bridges are the lab's two L2 segments and the host's address on each.
var bridges = []struct {
	name, link, addr string
}{
	{BridgeMgmt, "mgmt", HostMgmt.String() + "/24"},
	{BridgeStorage, "storage", HostStorage.String() + "/24"},
}

// setupNetwork creates the bridges, every node's taps and the control links,
// leaving whatever already exists as it is (a cut link stays cut).
func (l *Lab) setupNetwork(ctx context.Context) error {
	have, err := l.links(ctx)
	if err != nil {
		return err
	}
	var steps [][]string
	for _, b := range bridges {
		if _, ok := have[b.name]; !ok {
			steps = append(steps, []string{"link", "add", "name", b.name, "type", "bridge"})
		}
		steps = append(steps,
			[]string{"addr", "replace", b.addr, "dev", b.name},
			[]string{"link", "set", "dev", b.name, "up"})
	}
	for _, n := range Nodes {
		for _, b := range bridges {
			tap := n.Tap(b.link)
			if _, ok := have[tap]; !ok {
				steps = append(steps,
					[]string{"tuntap", "add", "dev", tap, "mode", "tap"},
					[]string{"link", "set", "dev", tap, "master", b.name})
			}
			steps = append(steps, []string{"link", "set", "dev", tap, "up"})
		}
		tap := n.Tap("control")
		if _, ok := have[tap]; !ok {
			steps = append(steps, []string{"tuntap", "add", "dev", tap, "mode", "tap"})
		}
		steps = append(steps,
			[]string{"addr", "replace", HostControl.String() + "/32", "peer", n.Control.String() + "/32", "dev", tap},
			[]string{"link", "set", "dev", tap, "up"})
	}
	for _, s := range steps {
		if _, err := l.Run.Run(ctx, "ip", s...); err != nil {
			return fmt.Errorf("lab network: %w", err)
		}
	}
	return nil
}

// teardownNetwork deletes every interface the lab created. A bridge that
// still has ports of the compute lab (lab/cloud: hccmp-*) stays: the
// compute lab deletes it when it goes down.
func (l *Lab) teardownNetwork(ctx context.Context) error {
	have, err := l.links(ctx)
	if err != nil {
		return err
	}
	for name := range have {
		if name == BridgeMgmt || name == BridgeStorage {
			continue
		}
		if _, err := l.Run.Run(ctx, "ip", "link", "del", "dev", name); err != nil {
			return fmt.Errorf("lab network: %w", err)
		}
		l.logger().Info("deleted lab interface", "name", name)
	}
	out, err := l.Run.Run(ctx, "ip", "-j", "link", "show")
	if err != nil {
		return err
	}
	var all []link
	if err := json.Unmarshal(out, &all); err != nil {
		return fmt.Errorf("parse ip -j link show: %w", err)
	}
	for _, b := range bridges {
		if _, ok := have[b.name]; !ok {
			continue
		}
		if ports := portsOf(all, b.name); len(ports) > 0 {
			l.logger().Info("leaving lab bridge to the compute lab", "name", b.name, "ports", strings.Join(ports, ","))
			continue
		}
		if _, err := l.Run.Run(ctx, "ip", "link", "del", "dev", b.name); err != nil {
			return fmt.Errorf("lab network: %w", err)
		}
		l.logger().Info("deleted lab interface", "name", b.name)
	}
	return nil
}

// portsOf lists the interfaces attached to bridge.
func portsOf(all []link, bridge string) []string {
	var ports []string
	for _, k := range all {
		if k.Master == bridge {
			ports = append(ports, k.Name)
		}
	}
	return ports
}

func linkNames(which Link) ([]string, error) {
	switch which {
	case LinkMgmt:
		return []string{"mgmt"}, nil
	case LinkStorage:
		return []string{"storage"}, nil
	case LinkAll:
		return []string{"mgmt", "storage"}, nil
	}
	return nil, fmt.Errorf("unknown link %q: want mgmt, storage or all", which)
}

// Partition cuts node's link(s) by taking its taps off the bridges. The
// control link (exec, fencing) stays up, like a BMC network would.
func (l *Lab) Partition(ctx context.Context, nodeName string, which Link) error {
	n, err := NodeByName(nodeName)
	if err != nil {
		return err
	}
	names, err := linkNames(which)
	if err != nil {
		return err
	}
	for _, ln := range names {
		if _, err := l.Run.Run(ctx, "ip", "link", "set", "dev", n.Tap(ln), "nomaster"); err != nil {
			return fmt.Errorf("cut %s %s link: %w", n.Name, ln, err)
		}
		l.logger().Info("cut link", "node", n.Name, "link", ln)
	}
	return nil
}

// Heal puts every node tap back on its bridge.
func (l *Lab) Heal(ctx context.Context) error {
	have, err := l.links(ctx)
	if err != nil {
		return err
	}
	for _, n := range Nodes {
		for _, b := range bridges {
			tap := n.Tap(b.link)
			k, ok := have[tap]
			if !ok || k.Master == b.name {
				continue
			}
			if _, err := l.Run.Run(ctx, "ip", "link", "set", "dev", tap, "master", b.name); err != nil {
				return fmt.Errorf("heal %s %s link: %w", n.Name, b.link, err)
			}
			l.logger().Info("healed link", "node", n.Name, "link", b.link)
		}
	}
	return nil
}
