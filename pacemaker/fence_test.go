package pacemaker

import (
	"os"
	"strings"
	"testing"
)

// The CIB right after Pacemaker fenced ctl2 (lab, Pacemaker 2.1.5), as
// ctl1 read it, with crm-fence-peer.sh's constraint.
const peerFencedCIB = "../drbd/testdata/cib-peer-fenced-2.1.5.xml"

func TestFenceOwner(t *testing.T) {
	noConstraint := `<constraints><rsc_location id="cli-ban-g-services-on-ctl1" rsc="g-services" role="Started" node="ctl1" score="-INFINITY"/></constraints>`
	for _, c := range []struct {
		name, doc, want string
	}{
		{"whole CIB after fencing (cibadmin --query)", readFile(t, peerFencedCIB), "ctl1"},
		{"constraints section (cibadmin --query --scope constraints)", readFile(t, "testdata/cib/cibadmin-215-constraints-move-ban-fence.xml"), "ctl1"},
		{"no fence constraint", noConstraint, ""},
		{"empty constraints", "<constraints/>", ""},
	} {
		got, err := FenceOwner([]byte(c.doc), "r0", "drbd-r0-clone")
		if err != nil || got != c.want {
			t.Errorf("%s: FenceOwner = %q, %v; want %q", c.name, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "<status/>", "<constraints>"} {
		if _, err := FenceOwner([]byte(bad), "r0", "drbd-r0-clone"); err == nil {
			t.Errorf("FenceOwner(%q): no error", bad)
		}
	}
}

func TestFenceView(t *testing.T) {
	cib := readFile(t, peerFencedCIB)
	v, err := ParseFenceView([]byte(cib))
	if err != nil {
		t.Fatal(err)
	}
	if peer, st := v.Peer("ctl1"); peer != "ctl2" || st != PeerFenced {
		t.Errorf("ctl1's peer: %s %s, want ctl2 fenced", peer, st)
	}
	if peer, st := v.Peer("ctl2"); peer != "ctl1" || st != PeerReachable {
		t.Errorf("ctl2's peer: %s %s, want ctl1 reachable", peer, st)
	}
	if owner, ok := v.Owner(FenceConstraintID("r0", "drbd-r0-clone")); !ok || owner != "ctl1" {
		t.Errorf("owner %q %v, want ctl1", owner, ok)
	}
	if _, ok := v.Owner("nope"); ok {
		t.Error("owner of a missing constraint")
	}
	// The handler's own constraint reads back as its owner's.
	placed := strings.Replace(cib, "<constraints>", "<constraints>"+FenceConstraintXML("r1", "drbd-r1-clone", "ctl2"), 1)
	if owner, err := FenceOwner([]byte(placed), "r1", "drbd-r1-clone"); err != nil || owner != "ctl2" {
		t.Errorf("FenceOwner of FenceConstraintXML: %q %v", owner, err)
	}
	if _, err := ParseFenceView([]byte("<cib>")); err == nil {
		t.Error("a broken CIB parsed")
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
