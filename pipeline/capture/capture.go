// Package capture is the first stage of the agent: it reads the probe's ring
// buffer into a bounded queue. When the queue is full it stops reading until
// there is room: the ring buffer, which holds tens of thousands of records,
// absorbs the burst meanwhile, and the kernel drops only when the ring
// itself is full, counting there by kind, and keeping its last part for
// listen and close records (bpf.ListenerReserve). Tetragon's observer drops
// at a full queue instead; here a record the ring could still hold is never
// dropped.
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
	// Waited counts events that found the queue to the next stage full:
	// the stage waited for room, and the ring held what came meanwhile.
	Waited atomic.Uint64
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
		if len(out) == cap(out) {
			stats.Waited.Add(1)
		}
		// Waiting here, also while draining at shutdown: the next stages
		// read until out is closed, and cancelling ctx detached the probe,
		// so the ring's end comes.
		out <- raw
		stats.Read.Add(1)
	}
}
