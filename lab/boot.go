package lab

import (
	"bytes"
	"embed"
	"fmt"
	"io/fs"
	"net/netip"
	"path/filepath"
	"text/template"

	"github.com/haconf/haconf/internal/atomicfile"
)

//go:embed boot
var bootFS embed.FS

// UMLModules is the module tree of Debian's user-mode-linux kernel.
const UMLModules = "/usr/lib/uml/modules/6.1.176"

// lvSize is the size of vg0/haconf; the rest of the 1 GiB disk is left for
// snapshots and test volumes.
const lvSize = "256M"

type bootData struct {
	Node, Dir, NodeDir, Binary          string
	AgentBinary, LabBinary              string
	Modules, ModuleTree                 string
	Mgmt, Storage, Control, HostControl netip.Addr
	VIP                                 netip.Addr
	AgentPort                           int
	LVSize                              string
	Nodes                               []Node
	NodeConfig, WatchdogLog             string
}

// bootFile is one rendered file: where it goes (relative to the node's
// directory in the lab) and its mode.
type bootFile struct {
	src, dst string
	mode     fs.FileMode
}

var bootFiles = []bootFile{
	{"stage1.sh", "stage1.sh", 0o755},
	{"stage2.sh", "files/etc/haconf/lab-stage2.sh", 0o755},
	{"services.sh", "files/etc/haconf/lab-services.sh", 0o755},
	{"inittab", "files/etc/inittab", 0o644},
	{"hosts", "files/etc/hosts", 0o644},
	{"lvm.conf", "files/etc/lvm/lvm.conf", 0o644},
	{"fence_haconf_lab", "files/usr/sbin/fence_haconf_lab", 0o755},
	{"global_common.conf", "firstboot/etc/drbd.d/global_common.conf", 0o644},
}

// writeBootFiles renders n's boot scripts and the files copied into its root
// at every boot (files/) or only when absent (firstboot/).
func (l *Lab) writeBootFiles(n Node) error {
	d := bootData{
		Node: n.Name, Dir: l.Dir, NodeDir: l.nodeDir(n), Binary: l.binPath(), AgentBinary: l.agentBinPath(), LabBinary: l.labBinPath(), Modules: UMLModules, ModuleTree: filepath.Dir(UMLModules),
		Mgmt: n.Mgmt, Storage: n.Storage, Control: n.Control, HostControl: HostControl, VIP: VIP,
		AgentPort: AgentPort, LVSize: lvSize, Nodes: Nodes,
		NodeConfig: NodeConfigPath, WatchdogLog: WatchdogLog,
	}
	for _, f := range bootFiles {
		out, err := renderBoot(f.src, d)
		if err != nil {
			return err
		}
		if _, err := atomicfile.WriteIfChanged(filepath.Join(l.nodeDir(n), f.dst), out, f.mode); err != nil {
			return fmt.Errorf("write %s boot file: %w", n.Name, err)
		}
	}
	host := []byte(n.Name + "\n")
	if _, err := atomicfile.WriteIfChanged(filepath.Join(l.nodeDir(n), "files/etc/hostname"), host, 0o644); err != nil {
		return fmt.Errorf("write %s hostname: %w", n.Name, err)
	}
	return nil
}

func renderBoot(name string, d bootData) ([]byte, error) {
	src, err := bootFS.ReadFile("boot/" + name)
	if err != nil {
		return nil, err
	}
	t, err := template.New(name).Option("missingkey=error").Parse(string(src))
	if err != nil {
		return nil, fmt.Errorf("parse boot template %s: %w", name, err)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, d); err != nil {
		return nil, fmt.Errorf("render boot template %s: %w", name, err)
	}
	return b.Bytes(), nil
}
