package compute

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/haconf/haconf/compute/gossip"
)

// Metrics exports the controller's published status to Prometheus: the
// controller's own endpoint and the watchdog's /metrics on the node where
// the controller runs read it.
type Metrics struct {
	Store Store
	// Controller, when set, exports the status only if that controller
	// published it: with the pair both watchdogs read the same database,
	// and only the one beside the controller exports its metrics.
	Controller string
}

var (
	descStatusAge  = prometheus.NewDesc("haconf_compute_status_age_seconds", "Age of the compute controller's last published status.", nil, nil)
	descHosts      = prometheus.NewDesc("haconf_compute_hosts", "Compute hosts by condition.", []string{"condition"}, nil)
	descLinkUp     = prometheus.NewDesc("haconf_compute_link_up", "1 when the host is alive on the network.", []string{"host", "link"}, nil)
	descIncidents  = prometheus.NewDesc("haconf_compute_incidents", "Host-failure incidents by state.", []string{"state"}, nil)
	descEvacuated  = prometheus.NewDesc("haconf_compute_instances", "Instances of host failures by evacuation result.", []string{"result"}, nil)
	descDetection  = prometheus.NewDesc("haconf_compute_last_detection_seconds", "From the second link's death to the incident, for the latest incident.", []string{"host"}, nil)
	descRecoveryOf = prometheus.NewDesc("haconf_compute_last_evacuation_seconds", "From the host's failure to its last instance running elsewhere, for the latest closed incident.", []string{"host"}, nil)
)

// Describe implements prometheus.Collector.
func (m Metrics) Describe(ch chan<- *prometheus.Desc) { prometheus.DescribeByCollect(m, ch) }

// Collect implements prometheus.Collector. Without a status (no
// controller here, or the store unreadable) it exports nothing.
func (m Metrics) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := m.Store.Status(ctx)
	if err != nil || (m.Controller != "" && st.Controller != m.Controller) {
		return
	}
	ch <- prometheus.MustNewConstMetric(descStatusAge, prometheus.GaugeValue, time.Since(st.At).Seconds())
	byCond := map[Condition]int{Healthy: 0, LinkDown: 0, Failed: 0, Unknown: 0, Stopped: 0}
	for _, h := range st.Hosts {
		byCond[h.Condition]++
		for _, l := range gossip.Links {
			up := 0.0
			if h.Links[l].Alive {
				up = 1
			}
			ch <- prometheus.MustNewConstMetric(descLinkUp, prometheus.GaugeValue, up, h.Name, string(l))
		}
	}
	for c, n := range byCond {
		ch <- prometheus.MustNewConstMetric(descHosts, prometheus.GaugeValue, float64(n), string(c))
	}
	byState := map[State]int{}
	byResult := map[EvacState]int{}
	var last, lastClosed *Incident
	for _, in := range st.Incidents {
		byState[in.State]++
		for _, i := range in.Instances {
			byResult[i.State]++
		}
		last = in
		if in.State == StateDone || in.State == StatePartial {
			lastClosed = in
		}
	}
	for s, n := range byState {
		ch <- prometheus.MustNewConstMetric(descIncidents, prometheus.GaugeValue, float64(n), string(s))
	}
	for r, n := range byResult {
		ch <- prometheus.MustNewConstMetric(descEvacuated, prometheus.GaugeValue, float64(n), string(r))
	}
	if last != nil && len(last.Steps) > 0 && last.Steps[0].Name == "detected" {
		ch <- prometheus.MustNewConstMetric(descDetection, prometheus.GaugeValue, last.Steps[0].Took.Seconds(), last.Host)
	}
	if lastClosed != nil {
		ch <- prometheus.MustNewConstMetric(descRecoveryOf, prometheus.GaugeValue, lastClosed.Closed.Sub(lastClosed.FailedAt).Seconds(), lastClosed.Host)
	}
}
