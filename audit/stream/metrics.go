package stream

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the audit's Prometheus series.
type Metrics struct {
	Registry     *prometheus.Registry
	events       *prometheus.CounterVec
	evaluations  prometheus.Counter
	findings     *prometheus.CounterVec
	listeners    *prometheus.GaugeVec
	open         *prometheus.GaugeVec
	lag          *prometheus.GaugeVec
	rebuilds     prometheus.Counter
	rebuildSecs  prometheus.Histogram
	partitions   prometheus.Gauge
	refused      *prometheus.CounterVec
	setAside     *prometheus.CounterVec
	writeRetries *prometheus.CounterVec
	expired      prometheus.Counter
	// applied, duplicate and verified are events' outcomes counted for
	// every record: looked up once, not by label at each.
	applied, duplicate, verified prometheus.Counter
}

// NewMetrics registers the series on a registry of their own.
func NewMetrics() *Metrics {
	r := prometheus.NewRegistry()
	m := &Metrics{
		Registry: r,
		events: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bindwatch_audit_events_total",
			Help: "Events read from the events topic, by outcome: applied, duplicate (already applied), verified (seals, host keys and rotations that verified), refused (see bindwatch_audit_refused_total), undecodable."}, []string{"outcome"}),
		evaluations: prometheus.NewCounter(prometheus.CounterOpts{Name: "bindwatch_audit_evaluations_total",
			Help: "Listeners evaluated against the policy."}),
		findings: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bindwatch_audit_findings_total",
			Help: "Finding transitions published, by state."}, []string{"state"}),
		listeners: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "bindwatch_audit_listeners",
			Help: "Listeners in the tables of this instance's partitions."}, []string{"partition"}),
		open: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "bindwatch_audit_open_findings",
			Help: "Open findings of this instance's partitions, by kind: listener, require, coverage, integrity."}, []string{"partition", "kind"}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "bindwatch_audit_lag",
			Help: "Events of the partition not yet applied (high watermark minus the next offset)."}, []string{"partition"}),
		rebuilds: prometheus.NewCounter(prometheus.CounterOpts{Name: "bindwatch_audit_rebuilds_total",
			Help: "Partition states rebuilt from the state and findings topics."}),
		rebuildSecs: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "bindwatch_audit_rebuild_seconds",
			Help: "Time to rebuild one partition's state.", Buckets: prometheus.ExponentialBuckets(0.01, 4, 8)}),
		partitions: prometheus.NewGauge(prometheus.GaugeOpts{Name: "bindwatch_audit_partitions",
			Help: "Events topic partitions this instance holds."}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bindwatch_audit_refused_total",
			Help: "Records refused in a host's name, by integrity reason (unsigned counts records applied unverified)."}, []string{"reason"}),
	}
	m.setAside = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bindwatch_audit_outputs_set_aside_total",
		Help: "State and finding messages set aside so the partition goes on, by topic and reason: output_too_large (over what the audit writes), output_refused (the brokers refused the message for what it is)."}, []string{"topic", "reason"})
	m.writeRetries = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bindwatch_audit_write_retries_total",
		Help: "Writes to the audit's topics retried after a failure that may pass (no leader, not enough replicas, timeouts, the network), by topic."}, []string{"topic"})
	m.expired = prometheus.NewCounter(prometheus.CounterOpts{Name: "bindwatch_audit_hosts_expired_total",
		Help: "Hosts expired after audit.host_expiry without a record: their listeners and host record removed from the state topic, their open findings resolved."})
	m.applied, m.duplicate, m.verified = m.events.WithLabelValues("applied"), m.events.WithLabelValues("duplicate"), m.events.WithLabelValues("verified")
	r.MustRegister(m.expired, m.setAside, m.writeRetries, m.refused, m.events, m.evaluations, m.findings, m.listeners, m.open, m.lag, m.rebuilds, m.rebuildSecs, m.partitions)
	return m
}
