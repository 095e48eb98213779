package pipeline

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/bindwatch/bindwatch/bpf"
	"github.com/bindwatch/bindwatch/internal/metrics"
	"github.com/bindwatch/bindwatch/internal/spool"
	"github.com/bindwatch/bindwatch/pipeline/publish"
	"github.com/bindwatch/bindwatch/pipeline/record"
)

// Names of the health checks.
const (
	checkCapture  = "capture"
	checkKafka    = "kafka"
	checkSpool    = "spool"
	checkRegistry = "schema_registry"
)

// monitorInterval is how often the agent checks Kafka when nothing was
// acknowledged lately, and how often it may log drops.
const monitorInterval = 5 * time.Second

// dropLogInterval is the longest the log stays silent about new drops.
const dropLogInterval = time.Minute

// Snapshot gathers every stage's counters for a metrics scrape.
func (a *Agent) Snapshot() metrics.Snapshot {
	s := &a.stats
	snap := metrics.Snapshot{
		Captured:    s.Capture.Read.Load(),
		Published:   s.Publish.Published.Load(),
		Spooled:     s.Publish.Spooled.Load(),
		Replayed:    s.Publish.Replayed.Load(),
		WriteErrors: s.Publish.Failed.Load(),
		Dropped: map[string]uint64{
			"malformed":    s.Capture.Malformed.Load(),
			"encode_error": s.Encode.Errors.Load(),
			"rejected":     s.Publish.Rejected.Load(),
			"shutdown":     s.Publish.Lost.Load(),
		},
	}
	if n, err := a.probe.NextSeq(); err == nil {
		snap.KernelEvents = n
	}
	es := a.enricher.Stats()
	snap.CgroupLookups = map[string]uint64{"miss": es.CgroupMisses, "deferred": es.CgroupDeferred,
		"queue_full": es.CgroupQueueFull, "unknown": es.CgroupUnknown}
	snap.CgroupScans = es.CgroupScans
	snap.WorkloadPending = es.WorkloadPending
	snap.WorkloadLate = map[string]uint64{"found": es.WorkloadLate, "given_up": es.WorkloadMissing}
	snap.CRIPending = map[string]uint64{"pod_labels": es.PodLabelsPending, "image_digest": es.ImageDigestPending}
	snap.RecordOrder = map[string]uint64{"held": es.OrderHeld, "expired": es.OrderExpired, "late": es.OrderLate}
	snap.OrderWait = es.OrderWaited
	snap.QueueWaits = s.Capture.Waited.Load()
	snap.DroppedByKind = map[string]map[string]uint64{}
	if d, err := a.probe.Drops(); err == nil {
		since := d.Minus(a.before.drops)
		snap.Lease = a.leaseSnapshot(since, snap.Dropped)
		since.ByKind.Each(func(reason string, kind bpf.Kind, n uint64) {
			addByKind(snap.DroppedByKind, reason, kind.String(), n)
		})
	}
	snap.BlindSpots = a.probe.BlindSpots()
	sp := a.spool.Stats()
	snap.SpoolBytes = sp.Bytes
	lost := sp.DroppedMessages
	snap.Dropped["spool_full"] = lost[spool.FullOldest] + lost[spool.FullNewest] + lost[spool.TooLarge]
	snap.Dropped["spool_write_error"] = lost[spool.WriteError]
	snap.Dropped["spool_corrupt"] = lost[spool.Corrupt]
	addSpoolDropsByKind(snap.DroppedByKind, sp)
	return snap
}

// spoolKindReasons are the spool's reasons under each drop reason of the
// metrics.
var spoolKindReasons = map[string][]spool.Reason{
	"spool_full":        {spool.FullOldest, spool.FullNewest, spool.TooLarge},
	"spool_write_error": {spool.WriteError},
	"spool_corrupt":     {spool.Corrupt},
}

// addSpoolDropsByKind puts the spool's drops by kind under the metrics'
// reasons and kind names.
func addSpoolDropsByKind(byKind map[string]map[string]uint64, st spool.Stats) {
	for reason, rs := range spoolKindReasons {
		for _, r := range rs {
			for k, n := range st.DroppedByKind[r] {
				if n > 0 {
					addByKind(byKind, reason, publish.SpoolKindName(spool.Kind(k)), n)
				}
			}
		}
	}
}

// addKernelDrops puts the kernel's drop counters under their reasons.
// no_socket is a bind or listen that succeeded on an fd whose socket the
// program could not find: unreported, so counted as lost, and, like every
// loss, followed by a retake of the inventory, which lists the listener.
func addKernelDrops(dropped map[string]uint64, d bpf.Drops) {
	dropped["ring_buffer_full"] = d.RingBufferFull
	dropped["pending_full"] = d.PendingFull
	dropped["no_socket"] = d.NoSocket
	dropped["orphaned"] = d.Orphaned
	dropped["budget"] = d.Budget
	dropped["ring_reserved"] = d.RingReserved
}

// stageObserver turns what the publish stage does into metrics, health
// and freed ring space.
type stageObserver struct{ a *Agent }

func (o stageObserver) Taken(n int) { o.a.metrics.BatchSize.Observe(float64(n)) }

func (o stageObserver) Wrote(took time.Duration) { o.a.metrics.WriteLatency.Observe(took.Seconds()) }

// Result keeps the kafka health check in step with every write.
func (o stageObserver) Result(err error) {
	if err == nil {
		o.a.lastAck.Store(time.Now().UnixNano())
	}
	o.a.health.Set(checkKafka, err)
}

// Acknowledged feeds both the metrics histogram and a benchmark's observer.
func (o stageObserver) Acknowledged(age time.Duration) {
	o.a.metrics.EventLatency.Observe(age.Seconds())
	if o.a.observe != nil {
		o.a.observe(age.Seconds())
	}
}

func (o stageObserver) Replay(err error) { o.a.health.Set(checkSpool, err) }

func (o stageObserver) Delivered(ack record.Ack) { o.a.delivered(ack) }

// monitor checks Kafka when writes have not shown it alive lately (an idle
// host writes nothing), and logs drops when they grow, until ctx is done.
func (a *Agent) monitor(ctx context.Context) error {
	tick := time.NewTicker(monitorInterval)
	defer tick.Stop()
	a.lastTick.Store(time.Now().UnixNano())
	a.checkKafka(ctx)
	var logged map[string]uint64
	var lastLog, lastRetake time.Time
	var lost uint64
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		a.lastTick.Store(time.Now().UnixNano())
		a.renewLease()
		if time.Since(time.Unix(0, a.lastAck.Load())) > monitorInterval {
			a.checkKafka(ctx)
		}
		drops := a.Snapshot().Dropped
		if n := total(drops); n > lost && time.Since(lastRetake) >= lossRetakeInterval {
			a.retakeAfterLoss()
			lost, lastRetake = n, time.Now()
		}
		if changed(logged, drops) && time.Since(lastLog) >= dropLogInterval {
			args := []any{"component", "agent"}
			for reason, n := range drops {
				if n > 0 {
					args = append(args, reason, n)
				}
			}
			a.log.Warn("events dropped since start, by reason", args...)
			logged, lastLog = drops, time.Now()
		}
	}
}

// Alive is what the systemd watchdog asks before each ping: capture runs
// and the agent's own loop still ticks. Kafka being away is not a reason to
// be restarted (the spool covers it), so it is not part of this.
func (a *Agent) Alive() error {
	for _, p := range a.health.Problems() {
		if strings.HasPrefix(p, checkCapture+":") {
			return errors.New(p)
		}
	}
	if since := time.Since(time.Unix(0, a.lastTick.Load())); since > 3*monitorInterval {
		return fmt.Errorf("the agent's monitor has not run for %v", since.Round(time.Second))
	}
	return nil
}

func (a *Agent) checkKafka(ctx context.Context) {
	pctx, cancel := context.WithTimeout(ctx, monitorInterval)
	defer cancel()
	err := a.sink.Ping(pctx)
	if errors.Is(err, context.Canceled) {
		return // stopping
	}
	a.health.Set(checkKafka, err)
}

func total(m map[string]uint64) (n uint64) {
	for _, v := range m {
		n += v
	}
	return n
}

func changed(before, now map[string]uint64) bool {
	for k, v := range now {
		if before[k] != v {
			return true
		}
	}
	return false
}

// Version is set by the bindwatch command from its link-time version.
var Version = "dev"

func buildInfo() metrics.BuildInfo {
	b := metrics.BuildInfo{Version: Version, GoVersion: runtime.Version()}
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" {
				b.Revision = s.Value
			}
		}
	}
	return b
}

// addByKind adds n drops of kind for reason.
func addByKind(byKind map[string]map[string]uint64, reason, kind string, n uint64) {
	if byKind[reason] == nil {
		byKind[reason] = map[string]uint64{}
	}
	byKind[reason][kind] += n
}
