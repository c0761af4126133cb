// Package cloud runs the compute lab: a real Nova control plane and fake
// compute hosts on one Linux machine, beside the controller pair of
// package lab, for demos and end-to-end tests of compute failover. It
// never ships to a controller.
//
// # What runs
//
// Debian 12's OpenStack Zed packages (make deps installs them), as plain
// processes of the lab: no systemd, nothing in /etc changed, the
// machine's own services untouched. Each is started in its own session
// (one kill of its process group ends all of it), logs to log/NAME.log and
// records its pid in run/NAME.pid under the lab directory (DefaultDir):
//
//   - MariaDB 10.11 (its own datadir, on a socket in the lab directory, no
//     TCP) and RabbitMQ 3.10 (its own node, with its own epmd on loopback),
//   - Keystone, Placement and nova-api under uwsgi, nova-conductor and
//     nova-scheduler, one worker each,
//   - stand-ins for Neutron and Glance written in Go (haconf-lab compute
//     stubs): servers boot with networks "none", so Nova only lists ports
//     and reads one image,
//   - with --masakari, masakari-api and masakari-engine.
//
// The control plane listens on the lab host's management address
// (ControlAddr, 10.251.0.1) at OpenStack's usual ports.
//
// # Compute hosts
//
// Host cmpN is a network namespace (hccmp-cmpN) with two veth links: eth0
// on the management bridge (10.251.0.(100+N)) and eth1 on the storage
// bridge (10.251.1.(100+N)): the controller lab's bridges, so a process
// on the controllers reaches the hosts. Whichever lab comes up first
// creates a bridge, whichever goes down last deletes it. In the namespace
// runs nova-compute (from python3-nova) with host = cmpN and Nova's
// fake.MediumFakeDriver (10 vCPUs, 8 GiB, 1 TB each), so placement and the
// scheduler see real capacity.
//
// Faults are real: Crash is a power-off (every process in the namespace
// SIGKILLed at once, both links down); Partition takes one or both links
// down while the processes run; Heal brings them up; Start boots the host
// again (links up, nova-compute started as after a reboot). The fence
// agent (Fence, haconf-lab compute fence) drives Crash and Start through
// the fence-agents protocol.
//
// # Warm state
//
// The first Up makes the databases, cells, Keystone's keys, the users and
// the catalog (cold, about 90 s on 2 cores); later ones reuse them from
// state/ (warm), which is kept by Down and emptied when the installed
// versions of the packages (versionedPackages) differ from the ones that
// made it. The passwords (admin, services, RabbitMQ) are made once per
// state, kept in state/secrets.json (0600) and passed to services in their
// configuration files (0600, under a 0700 directory) or environment,
// never on a command line.
package cloud
