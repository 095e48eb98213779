package capture

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

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

func TestQueueFullIsCountedNotBlocking(t *testing.T) {
	ring := newFakeRing()
	out := make(chan record.Raw, 10) // nobody reads it until the end
	var stats Stats
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, ring, ring, out, &stats) }()

	ring.produce(25)
	for stats.Read.Load() < 25 {
		// The stage must keep reading although nothing drains out.
	}
	if got := stats.QueueFull.Load(); got != 15 {
		t.Fatalf("QueueFull = %d, want 15 (25 read, queue of 10)", got)
	}
	cancel()
	var got []record.Raw
	for raw := range out {
		got = append(got, raw)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(got) != 10 || !ring.detached {
		t.Fatalf("delivered %d (want 10), probe detached: %v", len(got), ring.detached)
	}
	// The 10 queued were the first 10 read, each with the ring position
	// after it; the 15 dropped after them free their space with the next
	// event that gets through.
	for i, raw := range got {
		if raw.Event.Seq != uint64(i) || raw.Ack != record.Ack(100*(i+1)) {
			t.Fatalf("event %d: seq %d ack %d, want seq %d ack %d", i, raw.Event.Seq, raw.Ack, i, 100*(i+1))
		}
	}
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
	if len(seqs) != 99 || stats.QueueFull.Load() != 0 || stats.Malformed.Load() != 1 {
		t.Fatalf("delivered %d of 99, %d dropped, %d malformed", len(seqs), stats.QueueFull.Load(), stats.Malformed.Load())
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
