package enrich

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bindwatch/bindwatch/bpf"
	"github.com/bindwatch/bindwatch/pipeline/record"
	"github.com/bindwatch/bindwatch/schemas"
	"github.com/bindwatch/bindwatch/test/testenv"
)

// runEnricher runs e on in and returns the records' events.
func runEnricher(t *testing.T, e *Enricher, ctx context.Context, in chan bpf.Event) (<-chan schemas.BindEvent, <-chan error) {
	t.Helper()
	out := make(chan schemas.BindEvent)
	errc := make(chan error, 1)
	go func() { errc <- runBare(e, ctx, in, out) }()
	return out, errc
}

func TestRunDrainsInOrderAndCloses(t *testing.T) {
	e, dockerID, _ := fixtureEnricher(t)
	in := make(chan bpf.Event, 100)
	for i := range uint64(100) {
		in <- bpf.Event{Seq: i, CgroupID: dockerID, PID: 4242, Family: bpf.AFInet}
	}
	close(in)
	out, errc := runEnricher(t, e, t.Context(), in)
	var n uint64
	for rec := range out {
		if rec.Seq != int64(n) {
			t.Fatalf("record %d has seq %d", n, rec.Seq)
		}
		if deref(rec.ContainerID) != idA {
			t.Fatalf("record %d: container %q", n, deref(rec.ContainerID))
		}
		n++
	}
	if n != 100 {
		t.Errorf("%d records, want 100", n)
	}
	if err := <-errc; err != nil {
		t.Errorf("Run: %v", err)
	}
}

// Cancellation is not a stop signal: what was captured is still delivered,
// and Run ends only when its input is closed.
func TestRunKeepsDrainingAfterCancel(t *testing.T) {
	e, _, nginxID := fixtureEnricher(t)
	ctx, cancel := context.WithCancel(t.Context())
	in := make(chan bpf.Event, 10)
	out, errc := runEnricher(t, e, ctx, in)

	in <- bpf.Event{Seq: 0, CgroupID: nginxID, PID: 4343}
	if rec := <-out; rec.Seq != 0 {
		t.Fatalf("seq %d", rec.Seq)
	}
	cancel()
	for i := int64(1); i <= 5; i++ {
		in <- bpf.Event{Seq: uint64(i), CgroupID: nginxID, PID: 4343}
	}
	select {
	case err := <-errc:
		t.Fatalf("Run returned %v with input still open", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(in)
	for i := int64(1); i <= 5; i++ {
		rec, ok := <-out
		if !ok || rec.Seq != i {
			t.Fatalf("after cancel: record %+v, ok=%v; want seq %d", rec.Seq, ok, i)
		}
	}
	if _, ok := <-out; ok {
		t.Error("out not closed after the input was drained")
	}
	if err := <-errc; err != nil {
		t.Errorf("Run: %v", err)
	}
}

func TestRunResamplesClock(t *testing.T) {
	e, _, nginxID := fixtureEnricher(t)
	e.resync = time.Millisecond
	var step atomic.Int64
	e.clock.sample = func() (int64, error) { return fixtureOffset + step.Load(), nil }
	in := make(chan bpf.Event)
	out, errc := runEnricher(t, e, t.Context(), in)

	in <- bpf.Event{CgroupID: nginxID, PID: 4343}
	first := (<-out).Time
	step.Store(int64(time.Hour)) // the wall clock is stepped an hour forward
	testenv.Eventually(t, "the step followed with a 1 ms resync", 5*time.Second, func() error {
		in <- bpf.Event{CgroupID: nginxID, PID: 4343}
		if got := (<-out).Time; got.Sub(first) != time.Hour {
			return fmt.Errorf("time moved %v, want 1h", got.Sub(first))
		}
		return nil
	})
	close(in)
	for range out {
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if e.Stats().ClockResamples == 0 {
		t.Error("resamples not counted")
	}
}

// runBare runs e between plain event and record channels, as the tests
// written before delivery tokens feed it; it returns Run's result once out
// has every record and is closed.
func runBare(e *Enricher, ctx context.Context, in <-chan bpf.Event, out chan<- schemas.BindEvent) error {
	raws := make(chan record.Raw, cap(in))
	go func() {
		defer close(raws)
		for ev := range in {
			raws <- record.Raw{Event: ev}
		}
	}()
	recs := make(chan record.Record, cap(out))
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		defer close(out)
		for r := range recs {
			out <- r.Event
		}
	}()
	err := e.Run(ctx, raws, nil, recs)
	<-copied
	return err
}
