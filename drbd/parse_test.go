package drbd

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/haconf/haconf/internal/fixtures"
)

// Fixtures are documented samples unless named captured-* (see
// testdata/README.md); TestCapturedFixtures runs every captured file.
func TestParseProcDRBD(t *testing.T) {
	tests := []struct {
		file    string
		version string
		want    []Resource
	}{
		{"handwritten-proc-8.4-connected.txt", "8.4.11", []Resource{{Minor: 0, Role: RolePrimary, PeerRole: RoleSecondary, Disk: DiskUpToDate, PeerDisk: DiskUpToDate, Connection: ConnConnected, Replication: ReplEstablished, Protocol: "C"}}},
		{"handwritten-proc-8.4-standalone.txt", "8.4.11", []Resource{{Minor: 0, Role: RoleSecondary, PeerRole: RoleUnknown, Disk: DiskUpToDate, PeerDisk: DiskDUnknown, Connection: ConnStandAlone, Replication: ReplOff, OutOfSyncKiB: 52}}},
		{"handwritten-proc-8.4-wfconnection.txt", "8.4.11", []Resource{
			{Minor: 0, Role: RolePrimary, PeerRole: RoleUnknown, Disk: DiskUpToDate, PeerDisk: DiskDUnknown, Connection: ConnConnecting, Replication: ReplOff, Protocol: "C", OutOfSyncKiB: 4096},
			{Minor: 1, Connection: ConnUnconfigured},
		}},
		{"handwritten-proc-8.4-syncsource.txt", "8.4.11", []Resource{{Minor: 0, Role: RolePrimary, PeerRole: RoleSecondary, Disk: DiskUpToDate, PeerDisk: DiskInconsistent, Connection: ConnConnected, Replication: "SyncSource", Protocol: "C", OutOfSyncKiB: 61784,
			Sync: &SyncProgress{Percent: 6.3, RemainingKiB: 61784, TotalKiB: 65496, ETASeconds: 30, SpeedKiBs: 2056}}}},
		{"handwritten-proc-9.txt", "9.2.8", nil},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			st, err := ParseProcDRBD(fixtures.Read(t, "drbd", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if st.Version != tt.version {
				t.Errorf("version = %q, want %q", st.Version, tt.version)
			}
			if !reflect.DeepEqual(st.Resources, tt.want) {
				t.Errorf("resources:\n got %+v\nwant %+v", st.Resources, tt.want)
			}
		})
	}
}

func TestParseProcDRBDErrors(t *testing.T) {
	for _, in := range []string{
		" 0: cs:Connected ro:Primary ds:UpToDate/UpToDate C r-----\n",
		" 0: cs:Connected ds:UpToDate/UpToDate C r-----\n",
		" 0: cs:Connected ro:Primary/Secondary ds:UpToDate/UpToDate C r-----\n    ns:0 oos:x\n",
	} {
		if _, err := ParseProcDRBD([]byte(in)); err == nil {
			t.Errorf("ParseProcDRBD(%q) = nil error", in)
		}
	}
}

func TestParseGI(t *testing.T) {
	for _, f := range []string{"handwritten-gi-8.4-get-gi.txt", "handwritten-gi-8.4-show-gi.txt"} {
		g, err := ParseGI(fixtures.Read(t, "drbd", f))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if g.Current != 0xC8B09A8E5F4B3D2B || g.Bitmap != 0x9A1F2E3D4C5B6A79 || len(g.History) != 2 || g.History[0] != 0x4E5D6C7B8A990010 {
			t.Errorf("%s: %+v", f, g)
		}
		if !reflect.DeepEqual(g.Flags, []int{1, 1, 1, 0, 0, 0, 0}) {
			t.Errorf("%s: flags %v", f, g.Flags)
		}
	}
	// DRBD 9 prefixes the line with the peer device.
	g, err := ParseGI([]byte("r0:ctl2/0 AAAAAAAAAAAAAAAB:0000000000000000:0000000000000000:0000000000000000:1:1:0:0:0:0:0:0:0:0:0\n"))
	if err != nil || g.Current != 0xAAAAAAAAAAAAAAAB {
		t.Errorf("DRBD 9 line: %+v %v", g, err)
	}
	if _, err := ParseGI([]byte("no such resource\n")); err == nil {
		t.Error("garbage parsed")
	}
}

func TestRelate(t *testing.T) {
	const p, a, b = 0x1000, 0x2000, 0x3000
	tests := []struct {
		name string
		x, y GI
		want Relation
	}{
		{"same", GI{Current: a}, GI{Current: a | 1}, RelSame},
		{"split brain with common parent", GI{Current: a | 1, Bitmap: p}, GI{Current: b, Bitmap: p | 1}, RelSplitBrain},
		{"x ahead", GI{Current: a, Bitmap: p}, GI{Current: p}, RelAhead},
		{"x behind", GI{Current: p}, GI{Current: a, Bitmap: p}, RelBehind},
		{"unrelated bitmaps", GI{Current: a, Bitmap: p}, GI{Current: b, Bitmap: 0x4000}, RelUnrelated},
		{"fresh metadata", GI{Current: 0}, GI{Current: b}, RelUnrelated},
	}
	for _, tt := range tests {
		if got := Relate(tt.x, tt.y); got != tt.want {
			t.Errorf("%s: Relate = %s, want %s", tt.name, got, tt.want)
		}
	}
}

func TestParseEvents2(t *testing.T) {
	tests := []struct {
		file string
		want Resource
	}{
		{"handwritten-events2-9-now.txt", Resource{Name: "r0", Minor: 0, Role: RolePrimary, Disk: DiskUpToDate, Connection: ConnConnected, Replication: ReplEstablished, PeerName: "ctl2", PeerRole: RoleSecondary, PeerDisk: DiskUpToDate}},
		{"handwritten-events2-9-splitbrain.txt", Resource{Name: "r0", Minor: 0, Role: RolePrimary, Disk: DiskUpToDate, Connection: ConnStandAlone, Replication: ReplOff, PeerName: "ctl2", PeerRole: RoleUnknown, PeerDisk: DiskDUnknown, OutOfSyncKiB: 52, SplitBrain: true}},
		{"handwritten-events2-9-resync.txt", Resource{Name: "r0", Minor: 0, Role: RoleSecondary, Disk: DiskUpToDate, Connection: ConnConnected, Replication: ReplEstablished, PeerName: "ctl1", PeerRole: RolePrimary, PeerDisk: DiskUpToDate}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			st, events, err := ParseEvents2(fixtures.Read(t, "drbd", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if len(st.Resources) != 1 || !reflect.DeepEqual(st.Resources[0], tt.want) {
				t.Errorf("state:\n got %+v\nwant %+v", st.Resources, tt.want)
			}
			if len(events) == 0 {
				t.Error("no events")
			}
		})
	}
}

func TestParseEvents2Midsync(t *testing.T) {
	data := fixtures.Read(t, "drbd", "handwritten-events2-9-resync.txt")
	head := strings.SplitAfter(string(data), "exists -\n")[0]
	st, _, err := ParseEvents2([]byte(head))
	if err != nil {
		t.Fatal(err)
	}
	r := st.Resources[0]
	if r.Replication != "SyncTarget" || r.Sync == nil || r.Sync.Percent != 37.5 || r.Sync.ETASeconds != 12 || r.OutOfSyncKiB != 40960 {
		t.Errorf("mid-sync state %+v sync %+v", r, r.Sync)
	}
}

func TestParseEventErrors(t *testing.T) {
	for _, in := range []string{"", "exists", "bogus resource name:r0", "change resource role:Primary", "change resource name:r0 novalue"} {
		if _, err := ParseEvent(in); err == nil {
			t.Errorf("ParseEvent(%q) = nil error", in)
		}
	}
	e, err := ParseEvent("exists path name:r0 peer-node-id:1 local:ipv4:10.0.0.1:7789")
	if err != nil || e.Fields["local"] != "ipv4:10.0.0.1:7789" {
		t.Errorf("value with colons: %+v %v", e, err)
	}
}

func TestParseStatusJSON(t *testing.T) {
	st, err := ParseStatusJSON(fixtures.Read(t, "drbd", "handwritten-status-9.json"))
	if err != nil {
		t.Fatal(err)
	}
	want := Resource{Name: "r0", Minor: 0, Role: RolePrimary, Disk: DiskUpToDate, Connection: ConnConnected, Replication: "SyncSource",
		PeerName: "ctl2", PeerRole: RoleSecondary, PeerDisk: DiskInconsistent, OutOfSyncKiB: 2048,
		Sync: &SyncProgress{Percent: 87.5, RemainingKiB: 2048, ETASeconds: -1}}
	if len(st.Resources) != 1 || !reflect.DeepEqual(st.Resources[0], want) {
		t.Errorf("got %+v\nwant %+v", st.Resources, want)
	}
	st, err = ParseStatusJSON(fixtures.Read(t, "drbd", "handwritten-status-9-standalone.json"))
	if err != nil || st.Resources[0].Connection != ConnStandAlone || st.Resources[0].OutOfSyncKiB != 52 {
		t.Errorf("standalone: %+v %v", st, err)
	}
	if _, err := ParseStatusJSON([]byte(`{"name":"r0"}`)); err == nil {
		t.Error("object accepted")
	}
}

// TestCapturedFixtures parses every file captured on real nodes.
func TestCapturedFixtures(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("testdata", "captured-*"))
	if len(files) == 0 {
		t.Skip("no captured fixtures yet (go test ./lab -capture writes them)")
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		base := filepath.Base(f)
		switch {
		case strings.Contains(base, "proc"):
			st, err := ParseProcDRBD(data)
			if err != nil || st.Version == "" {
				t.Errorf("%s: %+v %v", base, st, err)
			}
		case strings.Contains(base, "gi"):
			if _, err := ParseGI(data); err != nil {
				t.Errorf("%s: %v", base, err)
			}
		case strings.Contains(base, "events2"):
			if _, _, err := ParseEvents2(data); err != nil {
				t.Errorf("%s: %v", base, err)
			}
		case strings.HasSuffix(base, ".json"):
			if _, err := ParseStatusJSON(data); err != nil {
				t.Errorf("%s: %v", base, err)
			}
		}
	}
}

func FuzzParseProcDRBD(f *testing.F) {
	for _, n := range []string{"handwritten-proc-8.4-connected.txt", "handwritten-proc-8.4-standalone.txt", "handwritten-proc-8.4-wfconnection.txt", "handwritten-proc-8.4-syncsource.txt", "handwritten-proc-9.txt"} {
		f.Add(fixtures.Read(f, "drbd", n))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := ParseProcDRBD(data)
		if err != nil {
			return
		}
		for _, r := range st.Resources {
			if r.Connection == "" {
				t.Fatalf("resource without connection state: %+v", r)
			}
		}
	})
}

func FuzzParseGI(f *testing.F) {
	f.Add(fixtures.Read(f, "drbd", "handwritten-gi-8.4-get-gi.txt"))
	f.Add(fixtures.Read(f, "drbd", "handwritten-gi-8.4-show-gi.txt"))
	f.Fuzz(func(t *testing.T, data []byte) {
		g, err := ParseGI(data)
		if err == nil && g.Raw == "" {
			t.Fatal("parsed without raw line")
		}
	})
}

func FuzzParseEvents2(f *testing.F) {
	for _, n := range []string{"handwritten-events2-9-now.txt", "handwritten-events2-9-splitbrain.txt", "handwritten-events2-9-resync.txt"} {
		f.Add(fixtures.Read(f, "drbd", n))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		st, _, err := ParseEvents2(data)
		if err != nil {
			return
		}
		for _, r := range st.Resources {
			if r.Name == "" {
				t.Fatalf("resource without name: %+v", r)
			}
		}
	})
}

// Captured on the haconf UML lab (DRBD 8.4.11): a real split brain where
// both nodes were promoted by hand (no Pacemaker) and both wrote.
func TestCapturedSyncStates84(t *testing.T) {
	for file, want := range map[string][2]string{
		"captured-proc-drbd-84-wfbitmaps-primary.txt":        {ConnConnected, "WFBitMapS"},
		"captured-proc-drbd-84-wfsyncuuid-secondary.txt":     {ConnConnected, "WFSyncUUID"},
		"captured-proc-drbd-84-syncsource-primary.txt":       {ConnConnected, "SyncSource"},
		"captured-proc-drbd-84-synctarget-secondary.txt":     {ConnConnected, "SyncTarget"},
		"captured-proc-drbd-84-after-crash-wfconnection.txt": {ConnConnecting, ReplOff},
		"captured-proc-drbd-84-connected-primary.txt":        {ConnConnected, ReplEstablished},
	} {
		st, err := ParseProcDRBD(fixtures.Read(t, "drbd", file))
		if err != nil {
			t.Fatal(err)
		}
		r := st.Resources[0]
		if r.Connection != want[0] || r.Replication != want[1] {
			t.Errorf("%s: %s/%s, want %v", file, r.Connection, r.Replication, want)
		}
	}
	st, _ := ParseProcDRBD(fixtures.Read(t, "drbd", "captured-proc-drbd-84-connected-primary.txt"))
	if !st.Resources[0].Healthy() {
		t.Error("connected primary not healthy")
	}
	// "finish: 0:00:13 speed: 4,096 (4,096) want: 102,400 K/sec"
	st, _ = ParseProcDRBD(fixtures.Read(t, "drbd", "captured-proc-drbd-84-synctarget-secondary.txt"))
	want := &SyncProgress{Percent: 12.5, RemainingKiB: 61400, TotalKiB: 65496, ETASeconds: 13, SpeedKiBs: 4096}
	if got := st.Resources[0].Sync; got == nil || *got != *want {
		t.Errorf("sync progress %+v, want %+v", got, want)
	}
}
