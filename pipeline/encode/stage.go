package encode

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/bindwatch/bindwatch/pipeline/record"
)

// StageStats count the encode stage's work; safe to read at any time.
type StageStats struct {
	Encoded atomic.Uint64
	// Errors counts events that could not be encoded and were dropped.
	Errors atomic.Uint64
}

// Batch is one encoded batch: Values[i] is the framed message of an event
// that happened at Times[i], kept so that delivery can measure how long each
// event took from bind to acknowledgement. Ack is the delivery token of the
// whole batch, records that failed to encode included: delivery reports it
// so their ring space is freed too.
type Batch struct {
	Values [][]byte
	Times  []time.Time
	Ack    record.Ack
}

// Run encodes each batch of records from in into one buffer and sends the
// framed messages, as slices of it, on out; it closes out when in is closed.
// A record that fails to encode is counted and left out of its batch.
func Run(ctx context.Context, enc Encoder, in <-chan []record.Record, out chan<- Batch, stats *StageStats, log *slog.Logger) error {
	defer close(out)
	// Sized from the previous batch, so a batch usually takes one allocation.
	perRecord := 256
	for batch := range in {
		buf := make([]byte, 0, perRecord*len(batch)+perRecord)
		ends := make([]int, 0, len(batch))
		times := make([]time.Time, 0, len(batch))
		var ack record.Ack
		for i := range batch {
			ack = ack.Later(batch[i].Ack)
			next, err := enc.Append(buf, &batch[i].Event)
			if err != nil {
				stats.Errors.Add(1)
				log.Error("dropping an event that does not encode", "component", "encode", "seq", batch[i].Event.Seq, "error", err)
				continue
			}
			buf = next
			ends = append(ends, len(buf))
			times = append(times, batch[i].Event.Time)
		}
		msgs := make([][]byte, len(ends))
		start := 0
		for i, end := range ends {
			msgs[i] = buf[start:end:end]
			start = end
		}
		if len(ends) > 0 {
			perRecord = len(buf)/len(ends) + 16
		}
		stats.Encoded.Add(uint64(len(ends)))
		out <- Batch{Values: msgs, Times: times, Ack: ack}
	}
	return nil
}
