package backup

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics exports the scheduled jobs' last outcomes (the repository's
// state.json), the size of the newest full and differential backup, and
// for each off-host copy target (backup.copies) its last copy run
// (copies.json) and its lag, read at every scrape. The watchdog, which
// runs the schedules, serves them. Times are exported as Unix timestamps,
// not ages, as Prometheus advises: the age is
// time() - haconf_backup_last_success_timestamp_seconds. The copy lag is
// the exception: its start (the oldest backup a target lacks) is not a
// time anything else exports.
type Metrics struct {
	Repo Repository
	// Config says which jobs are scheduled. A scheduled job that never
	// succeeded is exported with a zero timestamp, so an alert on its age
	// fires; a job neither scheduled nor ever run is left out.
	Config Config

	now func() time.Time // test hook
}

var (
	descLastSuccess = prometheus.NewDesc("haconf_backup_last_success_timestamp_seconds",
		"When the job last succeeded, in Unix time (0: never); a full or differential backup taken by hand counts.", []string{"kind"}, nil)
	descLastAttempt = prometheus.NewDesc("haconf_backup_last_attempt_timestamp_seconds",
		"When the scheduler last started the job, in Unix time.", []string{"kind"}, nil)
	descLastResult = prometheus.NewDesc("haconf_backup_last_attempt_success",
		"1 when the scheduler's last run of the job succeeded (a drill: the restore was proven), 0 when it failed.", []string{"kind"}, nil)
	descLastSize = prometheus.NewDesc("haconf_backup_last_size_bytes",
		"Size of the newest complete backup of the kind.", []string{"kind"}, nil)

	descCopyLastSuccess = prometheus.NewDesc("haconf_backup_copy_last_success_timestamp_seconds",
		"When a copy run to the off-host target last succeeded, in Unix time (0: never).", []string{"target"}, nil)
	descCopyLastAttempt = prometheus.NewDesc("haconf_backup_copy_last_attempt_timestamp_seconds",
		"When a copy run to the off-host target last started, in Unix time.", []string{"target"}, nil)
	descCopyLastResult = prometheus.NewDesc("haconf_backup_copy_last_attempt_success",
		"1 when the last copy run to the off-host target succeeded, 0 when it failed.", []string{"target"}, nil)
	descCopyLag = prometheus.NewDesc("haconf_backup_copy_lag_seconds",
		"Age of the oldest complete backup here that the off-host target is not known to hold (0: none); it grows until a copy run brings the target up to date.", []string{"target"}, nil)
)

// Describe implements prometheus.Collector.
func (m Metrics) Describe(ch chan<- *prometheus.Desc) { prometheus.DescribeByCollect(m, ch) }

// Collect implements prometheus.Collector. An unreadable state.json
// exports nothing (haconf status says why).
func (m Metrics) Collect(ch chan<- prometheus.Metric) {
	st, err := ReadState(m.Repo)
	if err != nil {
		return
	}
	scheduled := map[Job]bool{JobFull: m.Config.Full != "", JobDifferential: m.Config.Differential != "", JobDrill: m.Config.Drill != ""}
	for _, job := range []Job{JobFull, JobDifferential, JobDrill} {
		js := st[job]
		success := js.LastSuccess
		if job != JobDrill {
			if latest, err := m.Repo.Latest(Kind(job)); err == nil {
				ch <- prometheus.MustNewConstMetric(descLastSize, prometheus.GaugeValue, float64(latest.Size()), string(job))
				if latest.Finished.After(success) {
					success = latest.Finished
				}
			}
		}
		if !scheduled[job] && success.IsZero() && js.LastAttempt.IsZero() {
			continue
		}
		ch <- prometheus.MustNewConstMetric(descLastSuccess, prometheus.GaugeValue, unixSeconds(success), string(job))
		if !js.LastAttempt.IsZero() {
			ch <- prometheus.MustNewConstMetric(descLastAttempt, prometheus.GaugeValue, unixSeconds(js.LastAttempt), string(job))
			ch <- prometheus.MustNewConstMetric(descLastResult, prometheus.GaugeValue, success01(js.LastError), string(job))
		}
	}
	m.collectCopies(ch)
}

// collectCopies exports each configured copy target's last run and lag.
func (m Metrics) collectCopies(ch chan<- prometheus.Metric) {
	if len(m.Config.Copies) == 0 {
		return
	}
	st, err := ReadCopyState(m.Repo)
	if err != nil {
		return
	}
	now := time.Now()
	if m.now != nil {
		now = m.now()
	}
	for _, t := range m.Config.Copies {
		cs := st[t.Name]
		ch <- prometheus.MustNewConstMetric(descCopyLastSuccess, prometheus.GaugeValue, unixSeconds(cs.LastSuccess), t.Name)
		if !cs.LastAttempt.IsZero() {
			ch <- prometheus.MustNewConstMetric(descCopyLastAttempt, prometheus.GaugeValue, unixSeconds(cs.LastAttempt), t.Name)
			ch <- prometheus.MustNewConstMetric(descCopyLastResult, prometheus.GaugeValue, success01(cs.LastError), t.Name)
		}
		if since, err := Uncopied(m.Repo, cs); err == nil {
			lag := 0.0
			if !since.IsZero() {
				lag = max(now.Sub(since).Seconds(), 0)
			}
			ch <- prometheus.MustNewConstMetric(descCopyLag, prometheus.GaugeValue, lag, t.Name)
		}
	}
}

// success01 is 1 for an empty error, else 0.
func success01(lastError string) float64 {
	if lastError == "" {
		return 1
	}
	return 0
}

// unixSeconds is t in Unix seconds, 0 for the zero time.
func unixSeconds(t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return float64(t.UnixMilli()) / 1000
}
