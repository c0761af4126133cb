package compute

import (
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestMetricsFromTheControllersStatus(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, "cmp1", "cmp2", "cmp3")
		r.nova.boot("a", "cmp1", 1)
		r.start()
		r.crash("cmp1")
		time.Sleep(30 * time.Second)
		r.stop()
		want := `
# HELP haconf_compute_hosts Compute hosts by condition.
# TYPE haconf_compute_hosts gauge
haconf_compute_hosts{condition="failed"} 1
haconf_compute_hosts{condition="healthy"} 2
haconf_compute_hosts{condition="link-down"} 0
haconf_compute_hosts{condition="stopped"} 0
haconf_compute_hosts{condition="unknown"} 0
# HELP haconf_compute_incidents Host-failure incidents by state.
# TYPE haconf_compute_incidents gauge
haconf_compute_incidents{state="done"} 1
# HELP haconf_compute_instances Instances of host failures by evacuation result.
# TYPE haconf_compute_instances gauge
haconf_compute_instances{result="done"} 1
`
		if err := testutil.CollectAndCompare(Metrics{Store: r.store}, strings.NewReader(want), "haconf_compute_hosts", "haconf_compute_incidents", "haconf_compute_instances"); err != nil {
			t.Fatal(err)
		}
		if n := testutil.CollectAndCount(Metrics{Store: r.store}, "haconf_compute_link_up"); n != 6 {
			t.Errorf("%d link metrics, want 6", n)
		}
	})
}
