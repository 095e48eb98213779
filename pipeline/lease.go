package pipeline

import (
	"time"

	"github.com/bindwatch/bindwatch/bpf"
	"github.com/bindwatch/bindwatch/internal/metrics"
)

// beforeStart is what this agent found of the time no agent ran: how long
// the capture lease had been expired, what waited unread in the ring, and
// the kernel's drop counters then (its own drops are counted from these).
type beforeStart struct {
	orphaned time.Duration
	waiting  int
	drops    bpf.Drops
}

// noteBeforeStart records and logs what happened while no agent ran; the
// probe and the reader are open.
func (a *Agent) noteBeforeStart() {
	d, err := a.probe.Drops()
	if err != nil {
		a.log.Warn("kernel drop counters unreadable", "component", "agent", "error", err)
	}
	a.before = beforeStart{orphaned: a.probe.Orphaned(), waiting: a.reader.Pending(), drops: d}
	if a.before.orphaned > 0 || a.before.waiting > 0 || d != (bpf.Drops{}) {
		a.log.Warn("capture while no agent ran", "component", "agent",
			"orphaned_for", a.before.orphaned.Round(time.Second), "waiting_bytes", a.before.waiting,
			"ring_buffer_full", d.RingBufferFull, "orphaned_skips", d.Orphaned,
			"no_socket", d.NoSocket, "pending_full", d.PendingFull)
	}
}

// renewLease keeps pinned capture on while this agent runs; the monitor
// calls it every tick, well within capture.orphan_timeout (at least 30s).
func (a *Agent) renewLease() {
	if err := a.probe.RenewLease(); err != nil {
		a.log.Error("capture lease not renewed: capture stops once it runs out", "component", "agent", "error", err)
		return
	}
	a.leaseRenewed.Store(time.Now().UnixNano())
}

// leaseSnapshot is the lease part of a metrics scrape; it adds to dropped
// the kernel's drops since this agent started.
func (a *Agent) leaseSnapshot(since bpf.Drops, dropped map[string]uint64) metrics.Lease {
	addKernelDrops(dropped, since)
	l := metrics.Lease{
		OrphanedSeconds: a.before.orphaned.Seconds(),
		WaitingBytes:    uint64(a.before.waiting),
		LostBeforeStart: map[string]uint64{},
	}
	addKernelDrops(l.LostBeforeStart, a.before.drops)
	if exp, err := a.probe.LeaseExpired(); err == nil {
		l.ExpiredSeconds = exp.Seconds()
	}
	return l
}
