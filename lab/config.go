package lab

import (
	"bytes"
	"text/template"
)

// DRBDResource is the lab's DRBD resource (drbd.resource in Config); the
// CIB ids that depend on it come from pacemaker.NamesFor.
const DRBDResource = "r0"

// Config returns the haconf.yaml that describes the lab cluster. It passes
// `haconf config validate`.
func Config() []byte {
	var b bytes.Buffer
	d := struct {
		Nodes                      []Node
		MgmtNet, StorageNet        string
		VIP, FencedURL, LVSize, VG string
		Gateway                    string
		DRBDResource               string
	}{Nodes, MgmtPrefix.String(), StoragePrefix.String(), VIP.String(), FencedURL(), lvSize, "vg0", HostMgmt.String(), DRBDResource}
	if err := configTmpl.Execute(&b, d); err != nil {
		panic(err) // the template and its data are fixed
	}
	return b.Bytes()
}

var configTmpl = template.Must(template.New("haconf.yaml").Parse(`# haconf.yaml for the haconf lab (haconf-lab up): two User-Mode Linux
# controllers on bridges that the lab creates on this machine.
version: 1

cluster:
  name: haconf-lab

# hclab-mgmt and hclab-stor on the host; eth0 and eth1 in the nodes.
networks:
  management: {{.MgmtNet}}
  storage: {{.StorageNet}}

nodes:
{{- range .Nodes}}
  - name: {{.Name}}
    management: {{.Mgmt}}
    storage: {{.Storage}}
{{- end}}

corosync:
  token: 2s                    # UML nodes on a shared 2-core host: 1s flaps under load
  link_mode: passive

# The lab's fence agent (fence_haconf_lab, installed in every node) asks the
# host's fence daemon to power-cycle a node, over the node's control link.
# delay: in a split, the node running the services fences first and the other
# waits this long; it must exceed one fencing action. The lab's agent takes
# under 1 s; IPMI takes 5-15 s, so real clusters keep the 10 s default. After
# a crash the delay is pure cost, so it is a fixed part of every failover.
fencing:
  type: lab
  delay: 3s
  lab:
    url: {{.FencedURL}}

drbd:
  resource: {{.DRBDResource}}
  disk: /dev/{{.VG}}/haconf           # {{.LVSize}} LV that lab up creates in each node; vg0 has room for snapshots
  device: /dev/drbd0
  port: 7789
  version: auto                # the lab's UML kernel has DRBD 8.4
  resync_rate: 100M
  split_brain:
    policy: auto
    preserve_dir: /var/lib/haconf/splitbrain

vip:
  address: {{.VIP}}/24
  interface: eth0
  stats_port: 8404
  ping_hosts: [{{.Gateway}}]        # the host's end of the management bridge: a cut management link moves the services
  frontends:
    - {name: keystone,  port: 5000, check: /v3}
    - {name: glance,    port: 9292, check: /healthcheck}
    - {name: nova,      port: 8774, check: /}
    - {name: placement, port: 8778, check: /}
    - {name: neutron,   port: 9696, check: /}
    - {name: cinder,    port: 8776, check: /}
    - {name: horizon,   port: 80,   backend_port: 8080}

mysql:
  mount_point: /srv/haconf
  filesystem: ext4
  credentials_file: /etc/haconf/mysql.cnf
  port: 3306
  binary_log: true
  buffer_pool_size: 64M        # a UML node cannot reserve MariaDB's default maximum

rabbitmq:
  mode: mirrored
  cookie_file: /var/lib/rabbitmq/.erlang.cookie
  policy:
    name: ha-all
    pattern: '^(?!amq\.).*'
    ha_mode: all
    ha_sync_mode: automatic

backup:
  repository: /var/backups/haconf
  full: "0 2 * * 0"
  differential: "0 2 * * 1-6"
  drill: "0 5 * * 0"
  retention:
    fulls: 4
  parallel: 2

watchdog:
  listen: ":9750"
  interval: 2s
`))
