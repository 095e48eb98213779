package pipeline

import (
	"context"
	"errors"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/bindwatch/bindwatch/bpf"
	"github.com/bindwatch/bindwatch/pipeline/inventory"
	"github.com/bindwatch/bindwatch/pipeline/record"
	"github.com/bindwatch/bindwatch/schemas"
)

// InventoryStats count the inventory passes; safe to read at any time.
type InventoryStats struct {
	Passes     atomic.Uint64
	Sockets    atomic.Uint64 // snapshot records written, all passes
	Incomplete atomic.Uint64 // passes that could not walk everything
	Failed     atomic.Uint64 // passes that made no snapshot at all
}

// lossRetakeInterval spaces inventories taken because records were lost:
// a flood that keeps losing must not also keep walking every process.
const lossRetakeInterval = time.Minute

// While a user's listen and close records go over its budget, a listener
// it opens or closes may have no record: the inventory is retaken every
// floodRetakeInterval instead, so a listener held that long is in a
// snapshot, and its end is swept by the next, within a few seconds. The
// budgets are looked at every floodCheckInterval. A retake walks every
// process (113 ms for 10 000 listeners, BenchmarkInventory10k): one every
// 2 s costs a few percent of a core while the flood lasts, and only then;
// the flood itself costs its user nothing more.
const (
	floodRetakeInterval = 2 * time.Second
	floodCheckInterval  = 500 * time.Millisecond
)

// runInventory lists what already listens at start, every
// inventory.interval, and after records were lost (a listener whose listen
// record was lost still shows), sending the records to out; and reports
// what users' budgets dropped (reportSuppressed). A pass once
// begun is sent whole, even while stopping: its sequence numbers are
// taken, and a pass cut short would read downstream as a loss.
func (a *Agent) runInventory(ctx context.Context, out chan<- record.Record) error {
	defer close(out)
	var src inventory.Source = inventory.IterSource{Probe: a.probe}
	take := func(reason string) {
		snap, err := inventory.Take(src, a.probe, captureFilter(a.current()), time.Now())
		if errors.Is(err, bpf.ErrNoIterator) {
			a.log.Info("no BPF socket iterator: the inventory reads /proc", "component", "inventory")
			src = inventory.ProcSource{Root: "/proc"}
			a.inventoryFromProcfs.Store(true)
			snap, err = inventory.Take(src, a.probe, captureFilter(a.current()), time.Now())
		}
		if err != nil {
			a.invStats.Failed.Add(1)
			a.log.Warn("no inventory of listeners taken", "component", "inventory", "reason", reason, "error", err)
			return
		}
		for i, rec := range snap.Records {
			out <- record.Record{Event: rec, Rest: len(snap.Records) - 1 - i}
		}
		a.invStats.Passes.Add(1)
		a.invStats.Sockets.Add(uint64(len(snap.Records) - 1))
		if len(snap.Incomplete) > 0 {
			a.invStats.Incomplete.Add(1)
		}
		a.log.Info("inventory of listeners taken", "component", "inventory", "reason", reason,
			"source", src.Name(), "snapshot_id", snap.ID, "sockets", len(snap.Records)-1, "incomplete", snap.Incomplete)
		// A pass, and the BPF load before the first, are the agent's
		// largest one-off allocations (24 MB for 10 000 listeners); the
		// runtime would keep their pages resident for minutes. Hand them
		// back now, so the resident set is what the stream itself needs.
		snap = nil
		debug.FreeOSMemory()
	}
	take("start")
	var every <-chan time.Time
	if d := a.current().Inventory.Interval; d > 0 {
		t := time.NewTicker(d)
		defer t.Stop()
		every = t.C
	}
	suppressed := time.NewTicker(suppressedInterval)
	defer suppressed.Stop()
	heartbeat := time.NewTicker(a.current().Heartbeat.Interval)
	defer heartbeat.Stop()
	a.sendLiveness(out, schemas.KindHeartbeat)
	flood := listenerFlood{a: a}
	floodCheck := time.NewTicker(floodCheckInterval)
	defer floodCheck.Stop()
	for {
		select {
		case <-ctx.Done():
			a.reportSuppressed(out) // what the last interval dropped
			a.sendLiveness(out, schemas.KindStop)
			return nil
		case <-suppressed.C:
			if a.reportSuppressed(out) {
				take("flood over")
			}
		case <-heartbeat.C:
			a.sendLiveness(out, schemas.KindHeartbeat)
		case now := <-floodCheck.C:
			if flood.retake(now) {
				take("listener_flood")
			}
		case <-every:
			take("interval")
		case reason := <-a.inventories:
			take(reason)
		}
	}
}

// retakeAfterLoss asks for an inventory because records were lost; at
// most one waits, and the monitor spaces them by lossRetakeInterval.
func (a *Agent) retakeAfterLoss() {
	select {
	case a.inventories <- "loss":
	default:
	}
}

// listenerFlood watches the budgets of listen and close records: any of
// them dropped since the last flood retake calls for another, spaced by
// floodRetakeInterval. The one after a flood ends sweeps what closed
// during its last seconds.
type listenerFlood struct {
	a *Agent
	// seen is the listener suppressions counted when the last retake was
	// decided; last is when.
	seen uint64
	last time.Time
}

func (f *listenerFlood) retake(now time.Time) bool {
	if now.Sub(f.last) < floodRetakeInterval {
		return false
	}
	d, err := f.a.probe.Drops()
	if err != nil {
		return false // the metrics' scrape says so
	}
	n := d.ByKind.BudgetListeners()
	if n <= f.seen {
		return false
	}
	f.seen, f.last = n, now
	return true
}
