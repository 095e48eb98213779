package enrich

import (
	"context"
	"time"

	"github.com/bindwatch/bindwatch/bpf"
	"github.com/bindwatch/bindwatch/schemas"
)

// Run enriches every event from in and sends its record to out, in order,
// until in is closed; then it closes out and returns nil.
//
// Cancelling ctx does not stop Run. Shutdown is ordered: the stage upstream
// stops on cancellation and closes in, Run enriches what is still queued,
// and the stage downstream must read out until it is closed. Stopping here
// on cancellation would drop events that were already captured and
// numbered, which shows up downstream as a seq gap.
//
// While it runs, Run owns e and remeasures the clock offset every
// Config.ClockResync, so a stepped wall clock is followed within that time,
// and runs the background resolver of cgroup ids (cgroupBackground).
func (e *Enricher) Run(ctx context.Context, in <-chan bpf.Event, out chan<- schemas.BindEvent) error {
	defer close(out)
	if e.cgroupBG != nil {
		// Not ctx: the resolver serves until the input is drained.
		bgctx, stop := context.WithCancel(context.Background())
		defer stop()
		go e.cgroupBG.run(bgctx)
	}
	tick := time.NewTicker(e.resync)
	defer tick.Stop()
	done := ctx.Done()
	var rec schemas.BindEvent
	for {
		select {
		case ev, ok := <-in:
			if !ok {
				return nil
			}
			e.Enrich(&ev, &rec)
			out <- rec
		case <-tick.C:
			e.ResampleClock()
			e.collectCgroups()
		case <-done:
			e.log.Debug("cancelled, draining input until it is closed")
			done = nil
		}
	}
}
