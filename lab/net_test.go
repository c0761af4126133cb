package lab

import (
	"slices"
	"testing"
)

func TestPortsOf(t *testing.T) {
	all := []link{
		{Name: BridgeMgmt},
		{Name: "hclab-ctl1-m", Master: BridgeMgmt},
		{Name: "hccmp-cmp1-m", Master: BridgeMgmt},
		{Name: "hccmp-cmp1-s", Master: BridgeStorage},
	}
	got := portsOf(all, BridgeMgmt)
	slices.Sort(got)
	if !slices.Equal(got, []string{"hccmp-cmp1-m", "hclab-ctl1-m"}) {
		t.Errorf("ports of %s: %v", BridgeMgmt, got)
	}
	if got := portsOf(all, "hclab-none"); len(got) != 0 {
		t.Errorf("ports of a missing bridge: %v", got)
	}
}
