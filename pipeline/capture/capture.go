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
	// Malformed counts ring buffer records too short to decode.
	Malformed atomic.Uint64
}

// Run reads events into out until ctx is cancelled. Then it stops the probe,
// reads what the ring buffer still holds, delivers it (waiting for room now:
// nothing more is coming) and closes out. Each event handed on is recorded
// in marks, so delivery can free its ring space once it is safe.
func Run(ctx context.Context, src Source, probe Stopper, out chan<- bpf.Event, marks *Checkpoints, stats *Stats) error {
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

	var ev bpf.Event
	for {
		if err := src.Read(&ev); err != nil {
			if errors.Is(err, bpf.ErrFlushed) || errors.Is(err, bpf.ErrClosed) {
				return nil
			}
			if errors.Is(err, bpf.ErrShortRecord) {
				stats.Malformed.Add(1)
				continue
			}
			return fmt.Errorf("reading the ring buffer: %w", err)
		}
		// Marked before the send: once sent, it may be delivered at once.
		if ctx.Err() != nil {
			marks.handedOn(src.Position())
			out <- ev // draining: the next stages are still reading
		} else if len(out) < cap(out) {
			// Only this goroutine sends on out, so the room seen stays.
			marks.handedOn(src.Position())
			out <- ev
		} else {
			stats.QueueFull.Add(1)
		}
		// Counted once handled, so Read = queued + QueueFull at any moment.
		stats.Read.Add(1)
	}
}
