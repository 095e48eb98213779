// Package capture is the first stage of the agent: it reads the probe's ring
// buffer into a bounded queue. It never blocks on the stages after it; an
// event that finds the queue full is counted and dropped, so the kernel side
// keeps its pace and the loss is visible.
package capture

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/bindwatch/bindwatch/bpf"
	"github.com/bindwatch/bindwatch/pipeline/record"
)

// Source is what the stage reads from: a probe's ring buffer reader.
type Source interface {
	Read(ev *bpf.Event) error
	// Position is the ring position after the last event read.
	Position() uint64
	Flush() error
}

// Stopper stops the kernel side from producing, so the ring buffer can be
// drained to its end on shutdown.
type Stopper interface{ Detach() }

// Stats count the stage's work; safe to read at any time.
type Stats struct {
	Read atomic.Uint64
	// QueueFull counts events dropped because the queue to the next stage was full.
	QueueFull atomic.Uint64
	// Malformed counts ring buffer records too short to decode, or of
	// another bindwatch's layout (a ring left pinned by another version).
	Malformed atomic.Uint64
}

// Run reads events into out until ctx is cancelled. Then it stops the probe,
// reads what the ring buffer still holds, delivers it (waiting for room now:
// nothing more is coming) and closes out. Each event carries the ring
// position after it as its delivery token, so delivery can free its ring
// space once it is safe.
func Run(ctx context.Context, src Source, probe Stopper, out chan<- record.Raw, stats *Stats) error {
	defer close(out)
	stopped := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
		case <-stopped:
			return
		}
		probe.Detach()
		src.Flush()
	}()
	defer close(stopped)

	var raw record.Raw
	for {
		if err := src.Read(&raw.Event); err != nil {
			if errors.Is(err, bpf.ErrFlushed) || errors.Is(err, bpf.ErrClosed) {
				return nil
			}
			if errors.Is(err, bpf.ErrShortRecord) || errors.Is(err, bpf.ErrForeignRecord) {
				stats.Malformed.Add(1)
				continue
			}
			return fmt.Errorf("reading the ring buffer: %w", err)
		}
		raw.Ack = record.Ack(src.Position())
		if ctx.Err() != nil {
			out <- raw // draining: the next stages are still reading
		} else if len(out) < cap(out) {
			// Only this goroutine sends on out, so the room seen stays.
			out <- raw
		} else {
			stats.QueueFull.Add(1)
		}
		// Counted once handled, so Read = queued + QueueFull at any moment.
		stats.Read.Add(1)
	}
}
