package capture

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/bindwatch/bindwatch/bpf"
	"github.com/bindwatch/bindwatch/pipeline/record"
)

// fakeRing stands in for the ring buffer: it hands out numbered events, can
// be told to hold back until released, and flushes like the real reader.
type fakeRing struct {
	mu       sync.Mutex
	cond     *sync.Cond
	next     uint64
	limit    uint64 // events available so far
	flushed  bool
	detached bool
	short    map[uint64]bool // seqs delivered as malformed records
}

func newFakeRing() *fakeRing {
	r := &fakeRing{short: map[uint64]bool{}}
	r.cond = sync.NewCond(&r.mu)
	return r
}

func (r *fakeRing) produce(n uint64) {
	r.mu.Lock()
	r.limit += n
	r.mu.Unlock()
	r.cond.Broadcast()
}

func (r *fakeRing) Read(ev *bpf.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for r.next >= r.limit {
		if r.flushed {
			return bpf.ErrFlushed
		}
		r.cond.Wait()
	}
	seq := r.next
	r.next++
	if r.short[seq] {
		return fmt.Errorf("decoding: %w", bpf.ErrShortRecord)
	}
	*ev = bpf.Event{Seq: seq}
	return nil
}

// Position pretends every record is 100 bytes long.
func (r *fakeRing) Position() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.next * 100
}

func (r *fakeRing) Flush() error {
	r.mu.Lock()
	r.flushed = true
	r.mu.Unlock()
	r.cond.Broadcast()
	return nil
}

func (r *fakeRing) Detach() {
	r.mu.Lock()
	r.detached = true
	r.mu.Unlock()
}

// TestQueueFullWaits: with nobody reading its queue, the stage stops
// reading the ring instead of dropping; once the queue drains every event
// arrives, in order, each with the ring position after it.
func TestQueueFullWaits(t *testing.T) {
	ring := newFakeRing()
	out := make(chan record.Raw, 10) // nobody reads it for now
	var stats Stats
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, ring, ring, out, &stats) }()

	ring.produce(25)
	for stats.Waited.Load() == 0 {
		runtime.Gosched()
	}
	time.Sleep(10 * time.Millisecond) // it would read on now if it did not wait
	if got := stats.Read.Load(); got != 10 {
		t.Fatalf("read %d with a queue of 10 and nobody draining it, want 10: the rest stays in the ring", got)
	}
	var got []record.Raw
	for len(got) < 25 {
		got = append(got, <-out)
	}
	cancel()
	for raw := range out {
		got = append(got, raw)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(got) != 25 || !ring.detached {
		t.Fatalf("delivered %d (want 25), probe detached: %v", len(got), ring.detached)
	}
	for i, raw := range got {
		if raw.Event.Seq != uint64(i) || raw.Ack != record.Ack(100*(i+1)) {
			t.Fatalf("event %d: seq %d ack %d, want seq %d ack %d", i, raw.Event.Seq, raw.Ack, i, 100*(i+1))
		}
	}
}

// TestStopWhileWaiting: a stage waiting for room when the agent stops still
// detaches the probe, and delivers what it read and the ring's rest once
// the next stage reads on.
func TestStopWhileWaiting(t *testing.T) {
	ring := newFakeRing()
	out := make(chan record.Raw, 2)
	var stats Stats
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, ring, ring, out, &stats) }()
	ring.produce(5)
	for stats.Waited.Load() == 0 {
		runtime.Gosched()
	}
	cancel()
	for !ring.isDetached() {
		runtime.Gosched()
	}
	n := 0
	for range out {
		n++
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n != 5 {
		t.Fatalf("delivered %d of 5", n)
	}
}

func (r *fakeRing) isDetached() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.detached
}

// TestShutdownDrainsEverything: what the ring holds at shutdown is delivered,
// waiting for room instead of dropping, in order.
func TestShutdownDrainsEverything(t *testing.T) {
	ring := newFakeRing()
	ring.short[3] = true
	out := make(chan record.Raw, 2)
	var stats Stats
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // already stopping when the events are read
	ring.produce(100)
	done := make(chan error, 1)
	go func() { done <- Run(ctx, ring, ring, out, &stats) }()
	var seqs []uint64
	for raw := range out {
		seqs = append(seqs, raw.Event.Seq)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(seqs) != 99 || stats.Malformed.Load() != 1 {
		t.Fatalf("delivered %d of 99, %d malformed", len(seqs), stats.Malformed.Load())
	}
	for i, s := range seqs {
		want := uint64(i)
		if i >= 3 {
			want++
		}
		if s != want {
			t.Fatalf("event %d has seq %d, want %d", i, s, want)
		}
	}
}

func TestReadErrorEndsTheStage(t *testing.T) {
	out := make(chan record.Raw)
	err := Run(context.Background(), failing{}, failing{}, out, &Stats{})
	if err == nil || !errors.Is(err, errBroken) {
		t.Fatalf("Run = %v, want the read error", err)
	}
	if _, ok := <-out; ok {
		t.Fatal("out not closed")
	}
}

var errBroken = errors.New("broken")

type failing struct{}

func (failing) Read(*bpf.Event) error { return errBroken }
func (failing) Flush() error          { return nil }
func (failing) Position() uint64      { return 0 }
func (failing) Detach()               {}
