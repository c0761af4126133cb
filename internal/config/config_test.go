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
	// A copy target's port is 22 unless the file says otherwise.
	if cp := c.Backup.Copies; len(cp) != 1 || cp[0].Port != 22 || cp[0].Addr() != "192.0.2.50:22" || cp[0].String() != "haconf@192.0.2.50:22:/srv/backups/openstack-ctl" {
		t.Fatalf("backup.copies: %+v", cp)
	}
	// With the pair the compute controller's state is in MariaDB.
	if c.Compute == nil || c.Compute.StateDir != "" {
		t.Fatalf("compute: %+v", c.Compute)
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
		{"wrong type", edit("port: 7789", "port: seventy"), []string{`drbd.port: "seventy": must be a whole number, e.g. 7789`}},
		{"bad duration", edit("token: 3s", "token: fast"), []string{"corosync.token"}},
		{"rabbitmq mode", edit("mode: mirrored", "mode: clustered"), []string{`rabbitmq.mode: "clustered": must be mirrored, active-passive or quorum`}},
		{"drbd version", edit("version: auto", "version: 8.3"), []string{`drbd.version: "8.3": must be auto, 8.4 or 9`}},
		{"vip is a node address", edit("address: 192.0.2.10/24", "address: 192.0.2.11/24"), []string{`is also a controller's own address`}},
		{"overlapping networks", edit("storage: 198.51.100.0/24", "storage: 192.0.2.0/25"), []string{"overlaps networks.management"}},
		{"bad ping host", edit("ping_hosts: [192.0.2.1]", "ping_hosts: [192.0.2.1, gateway, 192.0.2.1]"),
			[]string{`vip.ping_hosts[1]: "gateway": must be an IP address`, `vip.ping_hosts[2]: "192.0.2.1": is listed twice`}},
		{"prefer without node", edit("policy: auto ", "policy: prefer "), []string{"drbd.split_brain.prefer: is required with policy: prefer"}},
		{"relative peer key file", edit("peer_key_file: /etc/corosync/authkey", "peer_key_file: authkey"),
			[]string{`watchdog.peer_key_file: "authkey": must be an absolute path`}},
		{"watchdog listen without a port", edit("  interval: 2s\n", "  interval: 2s\n  listen: 192.0.2.11\n"),
			[]string{`watchdog.listen: "192.0.2.11": must be address:port or :port`}},
		{"watchdog listen on a host name", edit("  interval: 2s\n", "  interval: 2s\n  listen: ctl1:9750\n"),
			[]string{`watchdog.listen: "ctl1:9750": must be address:port`}},
		{"watchdog listen port out of range", edit("  interval: 2s\n", "  interval: 2s\n  listen: \":97500\"\n"),
			[]string{`watchdog.listen: ":97500": must be address:port`}},
		{"relative token file", edit("  interval: 2s\n", "  interval: 2s\n  token_file: watchdog.token\n"),
			[]string{`watchdog.token_file: "watchdog.token": must be an absolute path`}},
		{"compute host without fence agent", edit("        agent: /usr/sbin/fence_ipmilan\n        options: {ip: 192.0.2.202", "        options: {ip: 192.0.2.202"),
			[]string{"compute.hosts[1].fence.agent: is required: a host is never evacuated unless it was fenced"}},
		{"compute domain names an unknown host", edit("hosts: [cmp1, cmp2]", "hosts: [cmp1, cmp9]"),
			[]string{`compute.domains[0].hosts[1]: "cmp9": is not a host listed in compute.hosts`}},
		{"compute overlapping domains", edit("      hosts: [cmp1, cmp2]\n", "      hosts: [cmp1, cmp2]\n    - name: rack2\n      hosts: [cmp2]\n"),
			[]string{`compute.domains[1].hosts[0]: "cmp2": is already in domain rack1`}},
		{"compute domain without hosts", edit("      hosts: [cmp1, cmp2]\n", "      hosts: [cmp1, cmp2]\n    - name: rack2\n      hosts: []\n"),
			[]string{`compute.domains[1].hosts: must list at least one host`}},
		{"compute fence password in options", edit("username: admin, lanplus", "username: admin, password: x, lanplus"),
			[]string{"compute.hosts[0].fence.options.password: must not be set here"}},
		{"compute duplicate host address", edit("storage: 198.51.100.102", "storage: 198.51.100.101"),
			[]string{`compute.hosts[1].storage: "198.51.100.101": is already the address of hosts[0].storage`}},
		{"compute state_dir with the pair", edit("  recovery: auto", "  recovery: auto\n  state_dir: /srv/haconf/compute"),
			[]string{`compute.state_dir: "/srv/haconf/compute": is not used with the controller pair: the compute controller keeps its state in MariaDB (database haconf)`}},
		{"compute share", edit("max_failed_share: 0.5", "max_failed_share: 1.5"), []string{`compute.guards.max_failed_share: "1.5": must be above 0`}},
		{"copy target without key or known hosts", edit("      identity_file: /etc/haconf/backup-copy.key", "      identity_file: backup-copy.key",
			"      known_hosts_file: /etc/haconf/backup-copy.known_hosts", ""),
			[]string{":99: backup.copies[0].known_hosts_file: is required: the known_hosts file holding the target's host key",
				`:103: backup.copies[0].identity_file: "backup-copy.key": must be an absolute path`}},
		{"copy target path and port", edit("      path: /srv/backups/openstack-ctl", "      path: srv/backups/\n      port: 0"),
			[]string{`:102: backup.copies[0].path: "srv/backups/": must be an absolute, clean directory path`, `:103: backup.copies[0].port: "0": must be between 1 and 65535`}},
		{"copy target named twice, host with a user", edit("    - name: vault\n", "    - name: vault\n      host: backup@vault\n      user: haconf\n      path: /srv/b\n      identity_file: /k\n      known_hosts_file: /kh\n    - name: vault\n"),
			[]string{`:100: backup.copies[0].host: "backup@vault": must be an address or host name`, `:105: backup.copies[1].name: "vault": is also the name of copies[0]`}},
		{"copy target key spelled as in ssh_config", edit("      identity_file: /etc", "      IdentityFile: /etc"),
			[]string{":99: backup.copies[0].identity_file: is required", ":103: backup.copies[0].IdentityFile: unknown key"}},
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

func TestComputeOnly(t *testing.T) {
	doc := `version: 1
compute:
  nova: {auth_url: http://192.0.2.10:5000/v3, username: admin, project: admin, password_file: /etc/haconf/nova-password}
  gossip: {key_file: /etc/haconf/gossip.key}
  controller: {name: lab, management: 192.0.2.1, storage: 198.51.100.1}
  hosts:
    - {name: cmp1, management: 192.0.2.101, storage: 198.51.100.101, fence: {agent: /usr/sbin/fence_ipmilan}}
  evacuate: {concurrency: 0}
`
	_, err := Parse("compute.yaml", []byte(doc))
	// An explicit 0 is reported, never replaced by the default; the pair's
	// sections are not required.
	if err == nil || !strings.Contains(err.Error(), `compute.yaml:8: compute.evacuate.concurrency: "0": must be 1-64`) || strings.Contains(err.Error(), "nodes") {
		t.Fatalf("err = %v", err)
	}
	c, err := Parse("compute.yaml", []byte(strings.Replace(doc, "  evacuate: {concurrency: 0}\n", "", 1)))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ evacuate, want string }{
		{"{max_in_flight: 0}", `compute.yaml:8: compute.evacuate.max_in_flight: "0": must be 1-256`},
		{"{concurrency: 16, max_in_flight: 8}", `compute.yaml:8: compute.evacuate.max_in_flight: "8": must be at least evacuate.concurrency (16)`},
	} {
		_, err := Parse("compute.yaml", []byte(strings.Replace(doc, "{concurrency: 0}", tc.evacuate, 1)))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("evacuate: %s: err = %v, want %s", tc.evacuate, err, tc.want)
		}
	}
	if !c.ComputeOnly() || c.Compute.Evacuate.Concurrency != 8 || c.Compute.Evacuate.MaxInFlight != 32 || c.Compute.Hosts[0].Fence.Timeout.String() != "1m0s" || c.Compute.Port("default") != 7946 || c.Compute.StateDir != "/var/lib/haconf/compute" {
		t.Fatalf("%+v", c.Compute)
	}
}

// What the YAML decoder finds is reported as precisely as what Validate
// finds, and only once: a repeated key at its line, a value of the wrong
// type with the type it needs and an example, and nothing that merely
// follows from either (the decoder skips a mapping with a repeated key,
// and a value of the wrong type is not decoded).
func TestDecodeProblems(t *testing.T) {
	for _, tc := range []struct {
		name string
		doc  []byte
		want []string // every problem, in order
	}{
		{"repeated version", edit("version: 1\n", "version: 1\nversion: 1\n"),
			[]string{"haconf.yaml:5: version: is already set at line 4: keep one of the two"}},
		{"repeated key in a section", edit("  interval: 2s\n", "  interval: 2s\n  interval: 3s\n"),
			[]string{"haconf.yaml:111: watchdog.interval: is already set at line 110: keep one of the two"}},
		{"repeated key in a list item", edit("  - name: ctl1\n", "  - name: ctl1\n    name: ctl1\n"),
			[]string{"haconf.yaml:18: nodes[0].name: is already set at line 17: keep one of the two"}},
		{"repeated section", edit("watchdog:\n", "watchdog:\n  interval: 1s\nwatchdog:\n"),
			[]string{"haconf.yaml:108: watchdog: is already set at line 106: keep one of the two"}},
		{"string for a number", edit("  fulls: 4", "  fulls: four"),
			[]string{`haconf.yaml:96: backup.retention.fulls: "four": must be a whole number, e.g. 4`}},
		{"list for a duration", edit("  interval: 2s\n", "  interval: [2s]\n"),
			[]string{"haconf.yaml:110: watchdog.interval: must be a duration such as 500ms, 30s, 5m or 1h30m, e.g. 2s"}},
		{"bad duration", edit("token: 3s", "token: fast"),
			[]string{`haconf.yaml:25: corosync.token: "fast": must be a duration such as 500ms, 30s, 5m or 1h30m, e.g. 3s`}},
		{"word for a boolean", edit("binary_log: true", "binary_log: sometimes"),
			[]string{`haconf.yaml:79: mysql.binary_log: "sometimes": must be true or false, e.g. true`}},
		{"in a flow mapping", edit("ip: 192.0.2.201, username: admin", "ip: 192.0.2.201, username: [admin]"),
			[]string{"haconf.yaml:134: compute.hosts[0].fence.options.username: must be a single value (a string), e.g. admin"}},
		{"string for a copy target's port", edit("      host: 192.0.2.50\n", "      host: 192.0.2.50\n      port: ssh\n"),
			[]string{`haconf.yaml:101: backup.copies[0].port: "ssh": must be a whole number`}},
		{"scalar for a section", edit("drbd:\n", "drbd: yes\nunused:\n"),
			[]string{`drbd: "yes": must be a mapping (key: value lines)`, "unused: unknown key"}},
		{"scalar for the node list", edit("nodes:\n", "nodes: ctl1\nunused:\n"),
			[]string{`nodes: "ctl1": must be a list (- item lines, or [a, b])`, "unused: unknown key"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("haconf.yaml", tc.doc)
			var p *Problems
			if !errors.As(err, &p) {
				t.Fatalf("err = %v, want *Problems", err)
			}
			var got []string
			for _, e := range p.Errs {
				got = append(got, e.Error())
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d problem(s), want %d:\n%s", len(got), len(tc.want), strings.Join(got, "\n"))
			}
			for i := range got {
				if !strings.Contains(got[i], tc.want[i]) {
					t.Errorf("problem %d: %s\nwant: %s", i, got[i], tc.want[i])
				}
			}
		})
	}
}

func TestEmptyFile(t *testing.T) {
	for _, doc := range []string{"", "\n\n", "# haconf.yaml\n# nothing yet\n"} {
		_, err := Parse("x.yaml", []byte(doc))
		if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "x.yaml: invalid configuration: the file is empty") || strings.Contains(err.Error(), "EOF") {
			t.Errorf("%q: %v", doc, err)
		}
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

// The watchdog listens on each node's own management address unless the
// file says otherwise; the peer is asked at its management address on the
// same port.
func TestWatchdogListen(t *testing.T) {
	c, err := Parse("haconf.yaml", Example())
	if err != nil {
		t.Fatal(err)
	}
	if c.Watchdog.Listen != "" || c.WatchdogListen("ctl1") != "192.0.2.11:9750" || c.WatchdogListen("ctl2") != "192.0.2.12:9750" || c.WatchdogPort() != "9750" {
		t.Fatalf("default: listen %q, ctl1 %s, ctl2 %s, port %s", c.Watchdog.Listen, c.WatchdogListen("ctl1"), c.WatchdogListen("ctl2"), c.WatchdogPort())
	}
	for listen, port := range map[string]string{":9800": "9800", "0.0.0.0:9750": "9750", "192.0.2.11:9751": "9751"} {
		c, err := Parse("haconf.yaml", edit("  interval: 2s\n", "  interval: 2s\n  listen: \""+listen+"\"\n"))
		if err != nil {
			t.Fatal(err)
		}
		if c.WatchdogListen("ctl1") != listen || c.WatchdogListen("ctl2") != listen || c.WatchdogPort() != port {
			t.Errorf("listen %q: ctl1 %s, ctl2 %s, port %s", listen, c.WatchdogListen("ctl1"), c.WatchdogListen("ctl2"), c.WatchdogPort())
		}
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
