package enrich

import (
	"context"
	"time"

	"github.com/bindwatch/bindwatch/pipeline/record"
)

// Run enriches every event from in and sends its record to out, in order,
// with its delivery token; between them it completes and passes on the
// agent's own records from snapshots (nil: none): in seq order with the
// ring's when OrderWith was called, the records of one reservation
// (record.Record.Rest) together. It returns nil once both are closed,
// closing out.
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
func (e *Enricher) Run(ctx context.Context, in <-chan record.Raw, snapshots <-chan record.Record, out chan<- record.Record) error {
	defer close(out)
	if e.cgroupBG != nil {
		// Not ctx: the resolver serves until the input is drained.
		bgctx, stop := context.WithCancel(context.Background())
		defer stop()
		go e.cgroupBG.run(bgctx)
	}
	if e.criLabels != nil {
		lctx, stop := context.WithCancel(context.Background())
		defer stop()
		go e.criLabels.run(lctx)
	}
	tick := time.NewTicker(e.resync)
	defer tick.Stop()
	done := ctx.Done()
	m := newMerge(e, out)
	defer m.timer.Stop()
	var rec record.Record
	for in != nil || snapshots != nil {
		// A nil channel leaves its case out: the timer's only while a
		// record waits (a case costs every select).
		ring, agent, waiting := in, snapshots, m.waiting()
		if !m.ringOpen() {
			ring = nil
		}
		if !m.agentOpen() {
			agent = nil
		}
		select {
		case raw, ok := <-ring:
			if !ok {
				in = nil
				m.ringClosed()
				continue
			}
			e.Enrich(&raw.Event, &rec.Event)
			rec.Ack = raw.Ack
			m.ring(&rec, raw.Event.Seq)
		case snap, ok := <-agent:
			if !ok {
				snapshots = nil
				m.agentClosed()
				continue
			}
			rest := snap.Rest
			snap.Rest = 0
			m.agent(snap, rest, in == nil)
		case now := <-waiting:
			m.tick(now)
		case <-tick.C:
			e.ResampleClock()
			e.collectCgroups()
			e.collectPodLabels()
		case <-done:
			e.log.Debug("cancelled, draining input until it is closed")
			done = nil
		}
	}
	return nil
}
