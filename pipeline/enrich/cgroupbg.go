package enrich

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"
)

// cgroupRequest asks the background resolver about an id the event path
// could not answer; at is when (unix ns), so that only a scan started later
// counts as having looked for it.
type cgroupRequest struct {
	id uint64
	at int64
}

// cgroupResult is the background resolver's answer; nil info is unknown.
type cgroupResult struct {
	id   uint64
	info *cgroupInfo
}

// cgroupQueueSize bounds the ids waiting for the background resolver, and
// so the enricher's pending set. Past it an id is counted and not asked
// about; a later event of the same cgroup asks again.
const cgroupQueueSize = 1024

// cgroupBackground answers, off the event path, the ids that neither /proc
// nor the index could: it scans the cgroup2 tree again and looks them up.
//
// The work is bounded whatever the callers do: requests wait in a bounded
// queue; every request waiting when a scan starts is answered by that one
// scan; scans are spaced by at least minInterval and by ten times the last
// scan's duration, so they take at most a tenth of a core however fast
// users make cgroups; and each id is looked up once, in a map.
type cgroupBackground struct {
	index       *cgroupIndex
	mount       cgroupMount
	trust       *cgroupTrust
	reqs        chan cgroupRequest
	results     chan cgroupResult
	minInterval time.Duration
	scans       atomic.Uint64
	log         *slog.Logger
}

func newCgroupBackground(index *cgroupIndex, mount cgroupMount, trust *cgroupTrust, minInterval time.Duration, log *slog.Logger) *cgroupBackground {
	return &cgroupBackground{
		index:       index,
		mount:       mount,
		trust:       trust,
		reqs:        make(chan cgroupRequest, cgroupQueueSize),
		results:     make(chan cgroupResult, cgroupQueueSize),
		minInterval: minInterval,
		log:         log,
	}
}

// run serves requests until ctx is done.
func (b *cgroupBackground) run(ctx context.Context) {
	var lastEnd time.Time
	var lastTook time.Duration
	batch := make([]cgroupRequest, 0, cgroupQueueSize)
	for {
		select {
		case <-ctx.Done():
			return
		case req := <-b.reqs:
			batch = append(batch[:0], req)
		}
		if wait := time.Until(lastEnd.Add(max(b.minInterval, 10*lastTook))); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
	drain:
		for {
			select {
			case req := <-b.reqs:
				batch = append(batch, req)
			default:
				break drain
			}
		}
		scanned := b.index.scanned.Load()
		for _, req := range batch {
			if req.at >= scanned {
				n, took, err := b.index.scan()
				b.scans.Add(1)
				lastEnd, lastTook = time.Now(), took
				if err != nil {
					b.log.Warn("cgroup index scan", "err", err, "cgroups", n, "took", took)
				} else {
					b.log.Debug("cgroup index scanned", "cgroups", n, "took", took, "ids_waiting", len(batch))
				}
				break
			}
		}
		for _, req := range batch {
			var res cgroupResult
			res.id = req.id
			if rel, ok := b.index.lookup(req.id); ok {
				res.info = b.trust.info(b.mount.pathOf(rel))
			}
			select {
			case b.results <- res:
			case <-ctx.Done():
				return
			}
		}
	}
}
