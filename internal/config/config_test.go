package config

import (
	"errors"
	"strings"
	"testing"

	"github.com/haconf/haconf/internal/validate"
)

func TestExampleIsValid(t *testing.T) {
	c, err := Parse("example.yaml", Example())
	if err != nil {
		t.Fatal(err)
	}
	if c.Cluster.Name != "openstack-ctl" || len(c.Nodes) != 2 || c.Corosync.Token.String() != "3s" {
		t.Fatalf("unexpected decode: %+v", c)
	}
}

// edit applies string replacements to the example config.
func edit(pairs ...string) []byte {
	return []byte(strings.NewReplacer(pairs...).Replace(string(Example())))
}

func TestProblems(t *testing.T) {
	tests := []struct {
		name string
		doc  []byte
		want []string // each must appear in some problem, in order of lines
	}{
		{"unknown key with suggestion", edit("  link_mode: passive", "  link_mdoe: passive"),
			[]string{":26: corosync.link_mdoe: unknown key (did you mean link_mode?)"}},
		{"missing version", edit("version: 1\n", ""), []string{"version: is required"}},
		{"future version", edit("version: 1\n", "version: 2\n"), []string{`version: "2": is not supported`}},
		{"vip outside networks", edit("address: 192.0.2.10/24", "address: 10.0.0.10/24"),
			[]string{`vip.address: "10.0.0.10/24": is outside both cluster networks`}},
		{"bad cron", edit(`full: "0 2 * * 0"`, `full: "61 2 * * 0"`), []string{`backup.full: "61 2 * * 0": is not a valid cron expression`}},
		{"retention zero", edit("fulls: 4", "fulls: 0"), []string{`backup.retention.fulls: "0": must be at least 1`}},
		{"duplicate node names", edit("- name: ctl2", "- name: ctl1"), []string{`nodes[1].name: "ctl1": is also the name of nodes[0]`}},
		{"node address outside its network", edit("management: 192.0.2.12", "management: 198.51.100.99"),
			[]string{`nodes[1].management: "198.51.100.99": is not inside networks.management`}},
		{"duplicate address", edit("storage: 198.51.100.12", "storage: 198.51.100.11"),
			[]string{`nodes[1].storage: "198.51.100.11": is already the address of nodes[0].storage`}},
		{"three nodes", edit("  - name: ctl2\n", "  - name: ctl3\n    management: 192.0.2.13\n    storage: 198.51.100.13\n  - name: ctl2\n"),
			[]string{`nodes: "3": must list exactly two controllers`}},
		{"fencing none not waived", edit("type: ipmi", "type: none"),
			[]string{`fencing.type: "none": runs the pair without fencing`}},
		{"ipmi without bmc for a node", edit("    ctl2:\n      address: 192.0.2.112", "    ctl3:\n      address: 192.0.2.112"),
			[]string{"fencing.ipmi.ctl2: is required", `fencing.ipmi.ctl3: "ctl3": is not a controller`}},
		{"wrong type", edit("port: 7789", "port: seventy"), []string{"drbd.port: cannot unmarshal !!str `seventy` into int"}},
		{"bad duration", edit("token: 3s", "token: fast"), []string{"corosync.token"}},
		{"rabbitmq mode", edit("mode: mirrored", "mode: clustered"), []string{`rabbitmq.mode: "clustered": must be mirrored, active-passive or quorum`}},
		{"drbd version", edit("version: auto", "version: 8.3"), []string{`drbd.version: "8.3": must be auto, 8.4 or 9`}},
		{"vip is a node address", edit("address: 192.0.2.10/24", "address: 192.0.2.11/24"), []string{`is also a controller's own address`}},
		{"overlapping networks", edit("storage: 198.51.100.0/24", "storage: 192.0.2.0/25"), []string{"overlaps networks.management"}},
		{"prefer without node", edit("policy: auto ", "policy: prefer "), []string{"drbd.split_brain.prefer: is required with policy: prefer"}},
		{"relative peer key file", edit("peer_key_file: /etc/corosync/authkey", "peer_key_file: authkey"),
			[]string{`watchdog.peer_key_file: "authkey": must be an absolute path`}},
		{"all at once", edit("  name: openstack-ctl", "  name: openstack-ctl\n  colour: blue",
			"address: 192.0.2.10/24", "address: 203.0.113.10/24",
			`drill: "0 5 * * 0"`, `drill: "every sunday"`),
			[]string{"cluster.colour: unknown key", "vip.address", "backup.drill"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("haconf.yaml", tc.doc)
			if err == nil {
				t.Fatal("accepted an invalid config")
			}
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error does not wrap ErrInvalid: %v", err)
			}
			msg := err.Error()
			pos := 0
			for _, w := range tc.want {
				i := strings.Index(msg[pos:], w)
				if i < 0 {
					t.Fatalf("missing (in line order) %q in:\n%s", w, msg)
				}
				pos += i
			}
			for _, e := range validate.Flatten(err) {
				var ve *validate.Error
				if errors.As(e, &ve) && ve.Line == 0 && ve.Key != "nodes" && ve.Key != "version" {
					t.Errorf("problem without a line: %v", e)
				}
			}
		})
	}
}

func TestNotAMapping(t *testing.T) {
	for _, doc := range []string{"", "- a\n- b\n", "version: [1\n"} {
		if _, err := Parse("x.yaml", []byte(doc)); err == nil || !errors.Is(err, ErrInvalid) {
			t.Errorf("%q: err = %v", doc, err)
		}
	}
}

func TestDefaults(t *testing.T) {
	doc := `version: 1
cluster: {name: p}
networks: {management: 192.0.2.0/24, storage: 198.51.100.0/24}
nodes:
  - {name: a, management: 192.0.2.1, storage: 198.51.100.1}
  - {name: b, management: 192.0.2.2, storage: 198.51.100.2}
fencing: {type: none, i_accept_no_fencing: true}
drbd: {disk: /dev/sdb}
vip: {address: 192.0.2.100/24, frontends: [{name: keystone, port: 5000}]}
`
	c, err := Parse("min.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if c.DRBD.Port != 7789 || c.DRBD.Version != "auto" || c.RabbitMQ.Mode != "mirrored" || c.Backup.Retention.Fulls != 4 ||
		c.VIP.Frontends[0].BackendPort != 5000 || c.MySQL.Datadir() != "/srv/haconf/mysql" || c.Fencing.Safe() {
		t.Fatalf("defaults not applied: %+v", c)
	}
	if p, _ := c.Peer("a"); p.Name != "b" {
		t.Fatalf("peer of a = %q", p.Name)
	}
}

func FuzzParse(f *testing.F) {
	f.Add(Example())
	f.Add([]byte("version: 1\nnodes: [{name: a}]\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Parse("fuzz.yaml", b)
		if err == nil && (c == nil || len(c.Nodes) != 2) {
			t.Fatalf("accepted config without two nodes")
		}
	})
}
