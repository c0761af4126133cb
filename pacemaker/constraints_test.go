package pacemaker

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestParseLocations(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "cib", "cibadmin-215-constraints-move-ban-fence.xml"))
	if err != nil {
		t.Fatal(err)
	}
	ls, err := ParseLocations(b)
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]Location{}
	for _, l := range ls {
		byID[l.ID] = l
	}
	if len(ls) != 6 {
		t.Errorf("%d locations, want 6: %+v", len(ls), ls)
	}
	expires := time.Date(2026, 11, 21, 12, 57, 55, 0, time.UTC)
	for _, c := range []struct {
		want Location
		cli  bool
	}{
		{Location{ID: "cli-prefer-drbd-r0-clone", Resource: "drbd-r0-clone", Role: RolePromoted, Node: "ctl2", Score: "INFINITY", Expires: expires}, true},
		{Location{ID: "cli-ban-g-services-on-ctl1", Resource: "g-services", Role: RoleStarted, Node: "ctl1", Score: "-INFINITY"}, true},
		{Location{ID: "cli-prefer-rabbitmq-clone", Resource: "rabbitmq-clone", Role: RoleStarted, Node: "ctl2", Score: "INFINITY"}, true},
		// A rule that is not "#uname eq": no node.
		{Location{ID: "drbd-fence-by-handler-r0-drbd-r0-clone", Resource: "drbd-r0-clone", Role: RolePromoted, Score: "-INFINITY"}, false},
		{Location{ID: "loc-fence-ctl1-avoids-ctl1", Resource: "fence-ctl1", Node: "ctl1", Score: "-INFINITY"}, false},
	} {
		got, ok := byID[c.want.ID]
		if !ok || !got.Expires.Equal(c.want.Expires) {
			t.Errorf("%s: got %+v, want %+v", c.want.ID, got, c.want)
			continue
		}
		got.Expires = c.want.Expires
		if got != c.want || got.CLI() != c.cli {
			t.Errorf("%s: got %+v (cli %v), want %+v (cli %v)", c.want.ID, got, got.CLI(), c.want, c.cli)
		}
	}
	p := byID["cli-prefer-drbd-r0-clone"]
	if p.Expired(expires.Add(-time.Second)) || !p.Expired(expires) {
		t.Error("Expired: a lifetime ends at its end time (date_expression lt)")
	}
	if byID["cli-ban-g-services-on-ctl1"].Expired(expires.Add(1000 * time.Hour)) {
		t.Error("a constraint without lifetime never expires")
	}
}

func TestParseCIBTime(t *testing.T) {
	want := time.Date(2026, 11, 21, 14, 0, 0, 0, time.UTC)
	for _, s := range []string{"2026-11-21 14:00:00Z", "2026-11-21 09:00:00 -05:00", "2026-11-21 15:00:00 +0100", "2026-11-21T14:00:00Z"} {
		got, err := ParseCIBTime(s)
		if err != nil || !got.Equal(want) {
			t.Errorf("ParseCIBTime(%q) = %v, %v", s, got, err)
		}
	}
	if _, err := ParseCIBTime("tomorrow"); err == nil {
		t.Error("ParseCIBTime accepted nonsense")
	}
	if got := FormatCIBTime(want.Add(1500 * time.Millisecond).In(time.FixedZone("X", 3600))); got != "2026-11-21 14:00:01Z" {
		t.Errorf("FormatCIBTime = %q", got)
	}
}
