package pipeline

import (
	"slices"
	"time"

	"github.com/bindwatch/bindwatch/pipeline/record"
	"github.com/bindwatch/bindwatch/schemas"
)

// sendLiveness sends a heartbeat (kind heartbeat) or, as the agent stops,
// a clean-stop record (kind stop): numbered like any other record, so the
// audit tells silence from a quiet host, and a stop from a host that went
// away. A heartbeat says what capture cannot see, what the agent lost
// since it started, by stage and reason, and until when the capture's
// lease holds.
func (a *Agent) sendLiveness(out chan<- record.Record, kind string) {
	seq, err := a.probe.ReserveSeq(1)
	if err != nil {
		a.log.Warn("liveness record not numbered", "component", "agent", "kind", kind, "error", err)
		return
	}
	interval := a.current().Heartbeat.Interval.Milliseconds()
	ev := schemas.BindEvent{Kind: kind, Seq: int64(seq), Time: time.Now(), HeartbeatIntervalMS: &interval}
	if kind == schemas.KindHeartbeat {
		snap := a.Snapshot()
		ev.CaptureBlind = slices.Clone(snap.BlindSpots)
		if a.inventoryFromProcfs.Load() {
			ev.CaptureBlind = append(ev.CaptureBlind, "the inventory walks /proc (no BPF socket iterator): sockets of processes it may not read are missed")
		}
		ev.Drops = make(map[string]int64, len(snap.Dropped))
		for k, n := range snap.Dropped {
			ev.Drops[k] = int64(n)
		}
		ev.LeaseExpires = a.leaseExpires()
	}
	out <- record.Record{Event: ev}
}

// leaseExpires is when pinned capture stops if no agent renews its lease
// from now on; nil without a lease.
func (a *Agent) leaseExpires() *time.Time {
	timeout := a.current().Capture.OrphanTimeout
	renewed := a.leaseRenewed.Load()
	if timeout <= 0 || renewed == 0 {
		return nil
	}
	t := time.Unix(0, renewed).Add(timeout)
	return &t
}
