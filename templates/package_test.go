package templates

import (
	"bytes"
	"path"
	"slices"
	"strings"
	"testing"

	"github.com/haconf/haconf/agents"
)

// The Debian package ships PackageFiles; the package's haconf (layout deb)
// renders the same files, byte for byte, for any configuration, so
// bootstrap finds them as they are and writes nothing.
func TestPackageFilesAreWhatThePackageRenders(t *testing.T) {
	pkg, err := PackageFiles()
	if err != nil {
		t.Fatal(err)
	}
	defer func(l string) { layout = l }(layout)
	layout = "deb"
	for _, c := range cases {
		_, files := loadCase(t, c)
		rendered := map[string]File{}
		for _, f := range files {
			rendered[f.Path] = f
		}
		for _, p := range pkg {
			r, ok := rendered[p.Path]
			if !ok && p.Path == "lib/systemd/system/haconf-compute-agent.service" {
				continue // compute hosts only: bootstrap never renders it
			}
			if !ok {
				t.Errorf("%s: the package ships %s, which haconf does not render", c.name, p.Path)
				continue
			}
			if r.Mode != p.Mode || !bytes.Equal(r.Content, p.Content) {
				t.Errorf("%s: %s rendered (mode %o) differs from the package's (mode %o):\n%s\n---\n%s", c.name, p.Path, r.Mode, p.Mode, r.Content, p.Content)
			}
		}
	}
	want := map[string]bool{"lib/systemd/system/haconf-watchdog.service": true, "lib/systemd/system/haconf-compute-agent.service": true, FencePeerPath: true, OCFDir + "/drbd": true}
	for _, p := range pkg {
		delete(want, p.Path)
		if bytes.Contains(p.Content, []byte("/usr/local/")) {
			t.Errorf("%s names /usr/local:\n%s", p.Path, p.Content)
		}
	}
	if len(want) > 0 {
		t.Errorf("PackageFiles lacks %v", want)
	}
}

func TestInstalledLayout(t *testing.T) {
	defer func(l string) { layout = l }(layout)
	for l, want := range map[string]Layout{"local": LocalLayout, "deb": DebLayout, "": LocalLayout} {
		layout = l
		if got := Installed(); got != want {
			t.Errorf("layout %q: %+v, want %+v", l, got, want)
		}
	}
}

// The watchdog repairs the pair with drbdadm, lvcreate, dd on block
// devices and a scratch mariadbd, as root: its unit's hardening must leave
// it /dev, a writable /etc (lvm2's metadata backups) and /var, module
// loading and sysfs (drbdadm), the network, and the host's mounts as they
// change (no MountFlags).
func TestWatchdogUnitHardening(t *testing.T) {
	pkg, err := PackageFiles()
	if err != nil {
		t.Fatal(err)
	}
	var unit string
	for _, f := range pkg {
		if strings.HasSuffix(f.Path, "/haconf-watchdog.service") {
			unit = string(f.Content)
		}
	}
	for _, want := range []string{"NoNewPrivileges=yes", "ProtectSystem=yes", "ProtectHome=yes", "PrivateTmp=yes", "UMask=0077",
		"ExecStart=/usr/bin/haconf watchdog -c /etc/haconf/haconf.yaml"} {
		if !strings.Contains(unit, "\n"+want+"\n") {
			t.Errorf("the watchdog unit lacks %s", want)
		}
	}
	for _, breaks := range []string{"PrivateDevices", "DevicePolicy", "DeviceAllow", "ProtectClock", "ProtectKernelModules",
		"ProtectKernelTunables", "ProtectSystem=full", "ProtectSystem=strict", "ReadOnlyPaths", "PrivateNetwork",
		"RestrictAddressFamilies", "User=", "DynamicUser", "CapabilityBoundingSet", "SystemCallFilter", "MountFlags"} {
		for _, line := range strings.Split(unit, "\n") {
			if strings.HasPrefix(line, breaks) {
				t.Errorf("the watchdog unit sets %q, which keeps the watchdog from its tools", line)
			}
		}
	}
}

// TestEveryAgentHasAWrapper: each of haconf's OCF agents is installed
// where Pacemaker looks for ocf:haconf:NAME, and nothing else is.
func TestEveryAgentHasAWrapper(t *testing.T) {
	var have []string
	for _, s := range packageSpecs(Layout{UnitDir: "lib/systemd/system"}) {
		if dir, name := path.Split(s.path); path.Clean(dir) == OCFDir {
			have = append(have, name)
		}
	}
	slices.Sort(have)
	if want := agents.Names(); !slices.Equal(have, want) {
		t.Errorf("wrappers in %s: %v, agents: %v", OCFDir, have, want)
	}
}
