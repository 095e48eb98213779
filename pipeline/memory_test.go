package pipeline

import (
	"context"
	"runtime/metrics"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bindwatch/bindwatch/internal/config"
	"github.com/bindwatch/bindwatch/internal/spool"
	"github.com/bindwatch/bindwatch/pipeline/record"
)

// slowSink takes every message after a delay per call, as a broker that is
// up but slower than the stream, and keeps nothing: what stays in memory is
// the pipeline's own.
type slowSink struct {
	delay time.Duration
	taken atomic.Uint64
}

func (s *slowSink) Publish(ctx context.Context, msgs []spool.Message) ([]int, error) {
	time.Sleep(s.delay)
	s.taken.Add(uint64(len(msgs)))
	return nil, nil
}
func (s *slowSink) Ping(context.Context) error  { return nil }
func (s *slowSink) Close(context.Context) error { return nil }

// peakLiveHeap runs fn and returns the largest live heap (as of each garbage
// collection) seen while it ran.
func peakLiveHeap(fn func()) uint64 {
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	var peak atomic.Uint64
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			metrics.Read(sample)
			if v := sample[0].Value.Uint64(); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-done:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
	fn()
	close(done)
	<-stopped
	return peak.Load()
}

// TestStagesMemoryIsBounded: the stages' memory does not grow with the
// number of events. Every queue, batch and cache is sized by configuration
// (pipeline.queue_size, pipeline.batch_size, the enrich caches' caps), so
// five times the events through a sink slower than the stream (every queue
// full, every cache churning through distinct pids, cgroups and network
// namespaces) must peak at about the same live heap.
func TestStagesMemoryIsBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("SKIP: pushes 120 000 events through the stages")
	}
	run := func(n int) uint64 {
		cfg := config.Defaults()
		sink := &slowSink{delay: time.Millisecond}
		var stats Stats
		ev := benchEvent(t)
		peak := peakLiveHeap(func() {
			events, wait := runStages(t, cfg, sink, &stats)
			for i := range n {
				ev.Seq, ev.BootNS = uint64(i), ev.BootNS+1000
				// Distinct callers: pids with no /proc entry, new cgroups
				// and network namespaces, so each cache fills to its cap.
				ev.PID, ev.CgroupID, ev.NetNS = uint32(1_000_000+i), uint64(1_000_000+i), uint32(i)
				events <- record.Raw{Event: ev, Ack: record.Ack(i + 1)}
			}
			close(events)
			if err := wait(); err != nil {
				t.Error(err)
			}
		})
		if got := sink.taken.Load() + stats.Publish.Spooled.Load(); got < uint64(n) {
			t.Fatalf("%d events: sink took and spool kept %d", n, got)
		}
		t.Logf("%d events: peak live heap %.1f MiB (sink took %d, spooled %d)", n, float64(peak)/(1<<20),
			sink.taken.Load(), stats.Publish.Spooled.Load())
		return peak
	}
	small, large := run(20_000), run(100_000)
	if float64(large) > 1.25*float64(small)+2<<20 {
		t.Fatalf("live heap peaked at %.1f MiB for 100 000 events, %.1f MiB for 20 000: it grows with the stream",
			float64(large)/(1<<20), float64(small)/(1<<20))
	}
}
