package pacemaker

import (
	"context"
	"strings"
	"testing"
	"time"
)

// recorder answers every command with out and records its argv.
type recorder struct {
	calls []string
	out   []byte
}

func (r *recorder) Run(_ context.Context, name string, args ...string) ([]byte, error) {
	r.calls = append(r.calls, strings.Join(append([]string{name}, args...), " "))
	return r.out, nil
}

func TestClusterCommands(t *testing.T) {
	r := &recorder{}
	c := Cluster{Run: r}
	ctx := context.Background()
	n := NamesFor("r0")
	c.Query(ctx, ScopeConstraints)
	c.Query(ctx, "")
	c.HasConstraint(ctx, n.FenceConstraint())
	c.DeleteConstraint(ctx, n.FenceConstraint())
	c.SetPromotionScore(ctx, "ctl1", n.PromotionAttr(), 10000)
	c.SetPromotionScore(ctx, "ctl1", n.PromotionAttr(), -1)
	c.NodeAttribute(ctx, "ctl2", "haconf-agents", Forever)
	c.Do(ctx, MoveArgv(n.Clone(), "ctl2", 7*time.Minute))
	want := []string{
		"cibadmin --query --scope constraints",
		"cibadmin --query",
		"cibadmin --query --scope constraints --xpath //rsc_location[@id='drbd-fence-by-handler-r0-drbd-r0-clone']",
		"cibadmin --delete --scope constraints --xml-text <rsc_location id='drbd-fence-by-handler-r0-drbd-r0-clone'/>",
		"crm_attribute -N ctl1 -n master-drbd-r0 -l reboot -v 10000",
		"crm_attribute -N ctl1 -n master-drbd-r0 -l reboot -D",
		"crm_attribute -N ctl2 -n haconf-agents -l forever -G -q",
		"crm_resource --move --promoted -r drbd-r0-clone -N ctl2 --lifetime PT420S",
	}
	if got := strings.Join(r.calls, "\n"); got != strings.Join(want, "\n") {
		t.Errorf("commands:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
	if _, err := c.Do(ctx, []string{"rm", "-rf", "/"}); err == nil {
		t.Error("Do ran a command that is not Pacemaker's")
	}
}

func TestArgvPredicates(t *testing.T) {
	for _, managed := range []bool{true, false} {
		if !IsSetManaged(SetManagedArgv("drbd-r0-clone", managed), managed) || IsSetManaged(SetManagedArgv("drbd-r0-clone", managed), !managed) {
			t.Errorf("IsSetManaged(SetManagedArgv(_, %v))", managed)
		}
	}
	if !IsResourceCommand(CleanupArgv("x")) || IsResourceCommand(CreateArgv(ScopeConstraints, "<x/>")) {
		t.Error("IsResourceCommand")
	}
	if !IsFenceConstraint(NamesFor("r0").FenceConstraint()) || IsFenceConstraint("cli-ban-x") {
		t.Error("IsFenceConstraint")
	}
}

func TestHasResource(t *testing.T) {
	cib := []byte(`<cib><configuration><resources><clone id="drbd-r0-clone"><primitive id="drbd-r0"/></clone>` +
		`<group id="g-services"><primitive id="fs-haconf"/></group></resources>` +
		`<constraints><rsc_location id="x" rsc="vip"/></constraints></configuration></cib>`)
	for id, want := range map[string]bool{"drbd-r0-clone": true, "drbd-r0": true, "g-services": true, "fs-haconf": true, "vip": false, "x": false} {
		if got := HasResource(cib, id); got != want {
			t.Errorf("HasResource(%s) = %v, want %v", id, got, want)
		}
	}
	if HasResource([]byte("<cib><configuration><resources/>"), "drbd-r0-clone") {
		t.Error("a truncated CIB without the clone has it")
	}
}
