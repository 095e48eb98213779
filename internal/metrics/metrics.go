// Package metrics exposes the agent's counters as Prometheus series named
// bindwatch_*, and its health, over HTTP. Counters are read from the stages'
// own atomics when scraped, so the event path pays nothing for them; only
// the latency and batch-size histograms are observed as events pass.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"slices"
	"time"
)

// Snapshot is the agent's counters at one moment.
type Snapshot struct {
	// KernelEvents is how many binds passed the in-kernel filters: the
	// next sequence number.
	KernelEvents uint64
	Captured     uint64 // read from the ring buffer
	Published    uint64 // acknowledged by Kafka
	Spooled      uint64 // written to the disk spool
	Replayed     uint64 // published from the spool
	WriteErrors  uint64 // messages in failed Kafka writes (each retried or spooled)
	SpoolBytes   int64
	// Dropped counts lost events by reason: see dropReasons.
	Dropped map[string]uint64
	// DroppedByKind splits the drops of the stages that know a record's
	// kind, by reason then kind (see kindDropReasons, DropKinds).
	DroppedByKind map[string]map[string]uint64
	// QueueWaits counts events the capture stage held while its queue was
	// full, the ring absorbing what came meanwhile.
	QueueWaits uint64
	// CgroupLookups counts the enricher's cgroup ids not answered by its
	// cache, by outcome: see cgroupResults.
	CgroupLookups map[string]uint64
	// CgroupScans counts rescans of the cgroup2 tree for such ids.
	CgroupScans uint64
	// WorkloadPending counts records that went out with workload_source
	// "pending": their container's runtime state was not on disk yet.
	WorkloadPending uint64
	// WorkloadLate counts such containers by outcome: see workloadResults.
	WorkloadLate map[string]uint64
	// CRIPending counts records of containerd CRI containers that went out
	// before the CRI answered, by field: pod_labels, image_digest.
	CRIPending map[string]uint64
	// RecordOrder counts the agent's own records (inventory, heartbeat,
	// stop, suppressed) the enricher held until the ring's records numbered
	// before them were read, by outcome: see orderResults. OrderWait is
	// how long they waited, in all.
	RecordOrder map[string]uint64
	OrderWait   time.Duration
	// Lease is the capture lease and what happened while no agent ran.
	Lease Lease
	// BlindSpots name what capture cannot see on this host (programs
	// that did not load or attach).
	BlindSpots []string
}

// Lease is the state of the capture lease (capture.orphan_timeout).
type Lease struct {
	// ExpiredSeconds is how long the lease has been expired now: 0 while
	// the agent renews it.
	ExpiredSeconds float64
	// OrphanedSeconds is how long it had been expired when this agent
	// started: how long capture was off because no agent ran.
	OrphanedSeconds float64
	// WaitingBytes is what the ring held, unread, when the agent started:
	// records captured while no agent ran.
	WaitingBytes uint64
	// LostBeforeStart counts kernel drops from before this agent started,
	// by reason; Dropped counts only its own.
	LostBeforeStart map[string]uint64
}

// BuildInfo labels bindwatch_build_info.
type BuildInfo struct{ Version, Revision, GoVersion string }

// Metrics is the registry the HTTP handler serves and the histograms the
// pipeline observes into.
type Metrics struct {
	Registry     *prometheus.Registry
	EventLatency prometheus.Histogram
	WriteLatency prometheus.Histogram
	BatchSize    prometheus.Histogram
}

// New registers every series. snapshot is called once per scrape.
func New(build BuildInfo, hook string, snapshot func() Snapshot) *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		Registry: reg,
		EventLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "bindwatch_event_delivery_seconds",
			Help:    "Time from a bind to Kafka's acknowledgement of its event.",
			Buckets: []float64{.005, .01, .025, .05, .075, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}),
		WriteLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "bindwatch_kafka_write_seconds",
			Help:    "Duration of one Kafka write of a batch, until acknowledged or failed.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
		BatchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "bindwatch_batch_events",
			Help:    "Events per batch written to Kafka.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 12),
		}),
	}
	reg.MustRegister(m.EventLatency, m.WriteLatency, m.BatchSize,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&snapshotCollector{snapshot: snapshot})
	info := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "bindwatch_build_info", Help: "Always 1; labels say which bindwatch runs.",
	}, []string{"version", "revision", "goversion"})
	info.WithLabelValues(build.Version, build.Revision, build.GoVersion).Set(1)
	hookInfo := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "bindwatch_hook_info", Help: "Always 1; the label says which kernel hook captures binds.",
	}, []string{"hook"})
	hookInfo.WithLabelValues(hook).Set(1)
	reg.MustRegister(info, hookInfo)
	return m
}

// Drop reasons, the label values of bindwatch_events_dropped_total.
var dropReasons = append(slices.Clone(kernelDropReasons), "queue_full", "malformed", "encode_error",
	"rejected", "spool_full", "spool_write_error", "spool_corrupt", "shutdown")

// kernelDropReasons are the drops the BPF programs count (bpf.Drops).
var kernelDropReasons = []string{"ring_buffer_full", "pending_full", "no_socket", "orphaned", "budget", "ring_reserved"}

// kindDropReasons are the reasons bindwatch_events_dropped_by_kind_total
// splits by kind: the ring (full; a bind refused over the part kept for
// listen and close records), users' budgets, and the capture queue (which
// waits instead of dropping, so always 0, kept for dashboards that sum it).
var kindDropReasons = []string{"ring_buffer_full", "ring_reserved", "budget", "queue_full"}

// DropKinds are the label values of kind: the kinds records have when
// these stages drop them.
var DropKinds = []string{"bind", "listen", "close"}

// spoolDropReasons are the spool's reasons, also split by kind: every
// record kind goes through the spool (SpoolDropKinds).
var spoolDropReasons = []string{"spool_full", "spool_write_error", "spool_corrupt"}

// SpoolDropKinds are the kind label values of the spool's reasons: every
// record kind, and unknown (damaged bytes, and spools written before the
// spool knew kinds).
var SpoolDropKinds = []string{"unknown", "bind", "listen", "close", "snapshot", "snapshot_end", "suppressed",
	"heartbeat", "stop", "host_key", "seal", "key_rotation"}

// Outcomes of cgroup lookups the cache could not answer, the label values
// of bindwatch_cgroup_lookups_total: miss (every such lookup), deferred
// (handed to the background resolver, the record went on without a
// container), queue_full (not handed over: its queue was full), unknown
// (not resolved, on the event path or in the background).
var cgroupResults = []string{"miss", "deferred", "queue_full", "unknown"}

// Outcomes for containers whose workload was pending, the label values of
// bindwatch_workload_late_total: found (later records carry it), given_up
// (nothing appeared in time; later records say "none").
var workloadResults = []string{"found", "given_up"}

// Outcomes of the enricher's holds, the label values of
// bindwatch_record_order_total: held (an agent record waited for the ring's
// records numbered before it), expired (the wait ran out: 100 ms without a
// ring record, 1 s in all), late (an agent record came after a ring record
// numbered above it had gone out: out of order in the topic).
var orderResults = []string{"held", "expired", "late"}

// criFields are the fields asked of containerd's CRI, the label values of
// bindwatch_workload_cri_pending_records_total.
var criFields = []string{"pod_labels", "image_digest"}

var (
	descCgroup      = prometheus.NewDesc("bindwatch_cgroup_lookups_total", "Cgroup ids the enricher's cache did not answer, by outcome.", []string{"result"}, nil)
	descCgroupScans = prometheus.NewDesc("bindwatch_cgroup_scans_total", "Rescans of the cgroup2 tree for ids neither /proc nor the index knew.", nil, nil)
	descWlPending   = prometheus.NewDesc("bindwatch_workload_pending_records_total", "Records sent with workload_source pending: their container's runtime state was not readable yet.", nil, nil)
	descWlLate      = prometheus.NewDesc("bindwatch_workload_late_total", "Containers whose workload was pending at first sight, by outcome.", []string{"result"}, nil)
	descWlCRI       = prometheus.NewDesc("bindwatch_workload_cri_pending_records_total", "Records of containerd CRI containers sent before the CRI told a field, by field.", []string{"field"}, nil)
	descOrder       = prometheus.NewDesc("bindwatch_record_order_total", "The agent's own records the enricher held until the ring's records numbered before them were read, by outcome.", []string{"result"}, nil)
	descOrderWait   = prometheus.NewDesc("bindwatch_record_order_wait_seconds_total", "How long the agent's own records were held for the ring's records numbered before them, in all.", nil, nil)
	descKernel      = prometheus.NewDesc("bindwatch_kernel_events_total", "Records numbered in the kernel's sequence (the next sequence number): binds that passed the in-kernel filters, and the records the agent numbers itself (inventory, heartbeats, host keys, seals).", nil, nil)
	descCaptured    = prometheus.NewDesc("bindwatch_events_captured_total", "Events read from the BPF ring buffer.", nil, nil)
	descPublished   = prometheus.NewDesc("bindwatch_events_published_total", "Events acknowledged by Kafka.", nil, nil)
	descSpooled     = prometheus.NewDesc("bindwatch_events_spooled_total", "Events written to the disk spool while Kafka was unavailable.", nil, nil)
	descReplayed    = prometheus.NewDesc("bindwatch_events_replayed_total", "Spooled events published once Kafka was back.", nil, nil)
	descDropped     = prometheus.NewDesc("bindwatch_events_dropped_total", "Events lost, by reason.", []string{"reason"}, nil)
	descDroppedKind = prometheus.NewDesc("bindwatch_events_dropped_by_kind_total", "Events lost in the ring buffer, to users' budgets, in the capture queue or in the disk spool, by reason and record kind.", []string{"reason", "kind"}, nil)
	descQueueWaits  = prometheus.NewDesc("bindwatch_capture_queue_waits_total", "Events the capture stage held while its queue was full; the ring buffer held what came meanwhile.", nil, nil)
	descWriteErrs   = prometheus.NewDesc("bindwatch_kafka_write_errors_total", "Messages in Kafka writes that failed (then retried or spooled).", nil, nil)
	descSpool       = prometheus.NewDesc("bindwatch_spool_bytes", "Bytes waiting in the disk spool.", nil, nil)
	descLeaseExp    = prometheus.NewDesc("bindwatch_capture_orphaned_seconds", "Seconds the capture lease has been expired; 0 while the agent renews it.", nil, nil)
	descOrphaned    = prometheus.NewDesc("bindwatch_capture_orphaned_before_start_seconds", "Seconds capture had been off, its lease expired, when this agent started.", nil, nil)
	descWaiting     = prometheus.NewDesc("bindwatch_capture_waiting_at_start_bytes", "Unread records in the ring when this agent started: captured while no agent ran.", nil, nil)
	descBlind       = prometheus.NewDesc("bindwatch_capture_blind", "Always 1 for each thing capture cannot see on this host; none when it sees everything.", []string{"what"}, nil)
	descLostBefore  = prometheus.NewDesc("bindwatch_capture_lost_before_start", "Kernel drops from before this agent started, by reason.", []string{"reason"}, nil)
)

// snapshotCollector turns one Snapshot into the counter series per scrape.
type snapshotCollector struct{ snapshot func() Snapshot }

func (c *snapshotCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descKernel, descCaptured, descPublished, descSpooled, descReplayed, descDropped, descDroppedKind, descQueueWaits, descWriteErrs, descSpool, descCgroup, descCgroupScans, descWlPending, descWlLate, descWlCRI, descOrder, descOrderWait, descLeaseExp, descOrphaned, descWaiting, descLostBefore, descBlind} {
		ch <- d
	}
}

func (c *snapshotCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.snapshot()
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	counter(descKernel, s.KernelEvents)
	counter(descCaptured, s.Captured)
	counter(descPublished, s.Published)
	counter(descSpooled, s.Spooled)
	counter(descReplayed, s.Replayed)
	counter(descWriteErrs, s.WriteErrors)
	for _, r := range dropReasons {
		counter(descDropped, s.Dropped[r], r)
	}
	for _, r := range kindDropReasons {
		for _, k := range DropKinds {
			counter(descDroppedKind, s.DroppedByKind[r][k], r, k)
		}
	}
	for _, r := range spoolDropReasons {
		for _, k := range SpoolDropKinds {
			counter(descDroppedKind, s.DroppedByKind[r][k], r, k)
		}
	}
	counter(descQueueWaits, s.QueueWaits)
	for _, r := range cgroupResults {
		counter(descCgroup, s.CgroupLookups[r], r)
	}
	counter(descCgroupScans, s.CgroupScans)
	counter(descWlPending, s.WorkloadPending)
	for _, r := range workloadResults {
		counter(descWlLate, s.WorkloadLate[r], r)
	}
	for _, r := range orderResults {
		counter(descOrder, s.RecordOrder[r], r)
	}
	ch <- prometheus.MustNewConstMetric(descOrderWait, prometheus.CounterValue, s.OrderWait.Seconds())
	for _, f := range criFields {
		counter(descWlCRI, s.CRIPending[f], f)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	gauge(descSpool, float64(s.SpoolBytes))
	gauge(descLeaseExp, s.Lease.ExpiredSeconds)
	gauge(descOrphaned, s.Lease.OrphanedSeconds)
	gauge(descWaiting, float64(s.Lease.WaitingBytes))
	for _, r := range kernelDropReasons {
		gauge(descLostBefore, float64(s.Lease.LostBeforeStart[r]), r)
	}
	for _, b := range s.BlindSpots {
		gauge(descBlind, 1, b)
	}
}
