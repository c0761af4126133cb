// Package lab runs a real two-controller cluster, ctl1 and ctl2, on one Linux
// machine, for demos and end-to-end tests.
//
// Each node is a User-Mode Linux 6.1 kernel (Debian's user-mode-linux,
// binary linux.uml) run as an ordinary process group on the host. Its
// kernel module tree (/usr/lib/uml/modules) has the in-kernel DRBD 8.4,
// device-mapper with snapshots, overlayfs and softdog.
//
// # What a node is made of
//
//   - Root: the host's / seen read-only through hostfs, under an overlayfs
//     whose upper layer lives on the node's own ext4 image (root.img, ubda).
//     Nothing a node writes lands in the host's files; everything the host
//     has installed (corosync, pacemaker, drbd-utils, mariadb, ...) is
//     there without copying. [Lab.Up] installs the Debian packages the
//     nodes need on the host first.
//   - Disk: disk.img (ubdb) is an LVM physical volume holding volume group
//     vg0 with the logical volume vg0/haconf, DRBD's backing device, and
//     free extents for snapshots.
//   - Networks: eth0 on the management bridge, eth1 on the storage bridge
//     (corosync link 0 and link 1; DRBD replicates over storage), and eth2,
//     a point-to-point control link to the host that faults never touch.
//     It plays the part of a BMC network: the exec agent and the fence
//     daemon are reached over it. The nodes have no default route.
//
// # What runs in a node
//
// There is no systemd in a node. The kernel starts boot/stage1.sh (from the
// lab directory, read through hostfs), which mounts the overlay root,
// pivots into it and hands over to busybox init as PID 1 (it reaps orphans
// and respawns). busybox runs boot/stage2.sh once (proc, sys, devtmpfs,
// /run, /dev/shm, addresses, LVM), then keeps one process alive: `haconf-lab
// agent`, the exec agent. Cluster services (corosync, pacemakerd,
// and the resources Pacemaker starts through OCF agents) are started by
// whoever drives the lab, through the agent. The binaries are links into
// the lab directory's bin/, where lab up copies them: haconf (what a
// controller runs) at /usr/local/sbin/haconf, haconf-agent beside it when
// it was built, and haconf-lab (the exec agent and the fence agent, which
// never ship to a controller) at /usr/local/sbin/haconf-lab; the fence
// agent's wrapper is /usr/sbin/fence_haconf_lab.
//
// # Exec and fencing
//
// `haconf-lab exec` sends argv (and optional stdin) over HTTP on the
// control link to the node's agent, authenticated with a bearer token that
// lab up generates (mode 0600 in the lab directory, copied into each node
// at boot); the reply carries stdout, stderr and the exit code.
//
// The fence agent fence_haconf_lab speaks the fence-agents protocol
// (options on the command line or key=value lines on stdin) and asks `haconf-lab
// fenced`, a daemon on the host, to power a node off, on or both; the
// daemon kills or boots the node's UML process group. The daemon is the
// parent of the node kernels (lab up, start and crash go through it too)
// and a child subreaper, so a killed node leaves no zombie even where PID 1
// does not reap. TestLabPacemakerFencing shows Pacemaker fencing a node for
// real through it.
package lab
