package proc

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// fixture reads testdata/name (see testdata/README.md).
func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseMountinfo(t *testing.T) {
	ms, err := ParseMountinfo(fixture(t, "mountinfo-shared.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 7 {
		t.Fatalf("%d mounts, want 7", len(ms))
	}
	want := Mount{ID: 67, Parent: 65, Major: 7, Minor: 0, Root: "/", MountPoint: "/tmp/fscap/a/my data",
		Options: "rw,noatime", Optional: []string{"shared:3"}, FSType: "ext4", Source: "/dev/loop0", SuperOptions: "rw"}
	if !reflect.DeepEqual(ms[2], want) {
		t.Errorf("line 3:\n got %+v\nwant %+v", ms[2], want)
	}
	if g := ms[2].PeerGroup("shared"); g != 3 || ms[4].PeerGroup("shared") != 0 || ms[4].Optional != nil {
		t.Errorf("peer groups: %d, %v", g, ms[4].Optional)
	}
	if ms[5].MountPoint != "/tmp/fscap/a/my data/sub" || ms[5].Source != "sub" {
		t.Errorf("line 6: %+v", ms[5])
	}

	ms, err = ParseMountinfo(fixture(t, "mountinfo-stacked.txt"))
	if err != nil || len(ms) != 14 {
		t.Fatalf("%d mounts, %v", len(ms), err)
	}
	if m := ms[11]; m.Root != "/run/netns" || m.MountPoint != "/run/netns" || m.Major != 254 ||
		m.SuperOptions != "rw,discard,resv_strict,resuid=65534,resgid=65534" {
		t.Errorf("bind mount: %+v", m)
	}
	ms, err = ParseMountinfo(fixture(t, "mountinfo-backslash.txt"))
	if err != nil || ms[0].MountPoint != `/tmp/fscap/back\slash` {
		t.Fatalf("%+v %v", ms, err)
	}

	for _, bad := range []string{
		"65 44 7:0 / /mnt rw - ext4\n",                     // no super options
		"65 44 7:0 / /mnt rw ext4 /dev/loop0 rw\n",         // no separator
		"x 44 7:0 / /mnt rw - ext4 /dev/loop0 rw\n",        // bad ID
		"65 44 7-0 / /mnt rw - ext4 /dev/loop0 rw\n",       // bad MAJ:MIN
		"65 44 7:0 / - rw - ext4 /dev/loop0 rw\n",          // separator too early
		"65 44 7:99999999999 / /m rw - ext4 /dev/l rw\n",   // minor overflows
		"65 44 7:0 / /mnt rw shared:1 - ext4 /dev/loop0\n", // no super options
	} {
		if _, err := ParseMountinfo([]byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	if ms, err := ParseMountinfo(nil); err != nil || ms != nil {
		t.Errorf("empty: %v %v", ms, err)
	}
}

func TestUnescape(t *testing.T) {
	for in, want := range map[string]string{
		`/srv/haconf`:             "/srv/haconf",
		`/mnt/my\040data`:         "/mnt/my data",
		`/mnt/a\011b\012c\134d`:   "/mnt/a\tb\nc\\d",
		`/mnt/x\04`:               `/mnt/x\04`, // too short: kept
		`/mnt/x\089`:              `/mnt/x\089`,
		`/mnt/x\400`:              `/mnt/x\400`, // more than a byte: kept
		`\040\040`:                "  ",
		`/mnt/trailing\`:          `/mnt/trailing\`,
		`/mnt/\303\251t\303\251`:  "/mnt/été",
		`/mnt/\\040`:              `/mnt/\ `,
		`/mnt/semi;colon\043hash`: "/mnt/semi;colon#hash",
	} {
		if got := unescape(in); got != want {
			t.Errorf("unescape(%q) = %q, want %q", in, got, want)
		}
	}
}

// formatMountinfo renders mounts the way the kernel does.
func formatMountinfo(ms []Mount) string {
	esc := strings.NewReplacer(`\`, `\134`, " ", `\040`, "\t", `\011`, "\n", `\012`)
	var b strings.Builder
	for _, m := range ms {
		opt := ""
		for _, o := range m.Optional {
			opt += " " + o
		}
		fmt.Fprintf(&b, "%d %d %d:%d %s %s %s%s - %s %s %s\n", m.ID, m.Parent, m.Major, m.Minor,
			esc.Replace(m.Root), esc.Replace(m.MountPoint), m.Options, opt, esc.Replace(m.FSType), esc.Replace(m.Source), m.SuperOptions)
	}
	return b.String()
}

func FuzzParseMountinfo(f *testing.F) {
	for _, name := range []string{"mountinfo-shared.txt", "mountinfo-stacked.txt", "mountinfo-backslash.txt"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{"1 2 3:4 / / rw - a b c\n\n", "1 2 3:4 \\ \\1 rw x - - - -"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ms, err := ParseMountinfo(b)
		if err != nil {
			return
		}
		// What parses renders back (escaped as the kernel does) to text
		// that parses to the same mounts.
		again, err := ParseMountinfo([]byte(formatMountinfo(ms)))
		if err != nil || !reflect.DeepEqual(again, ms) {
			t.Fatalf("round trip of %q:\n got %+v (%v)\nwant %+v", b, again, err, ms)
		}
	})
}
