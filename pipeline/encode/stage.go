package encode

import (
	"context"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"github.com/bindwatch/bindwatch/pipeline/record"
	"github.com/bindwatch/bindwatch/schemas"
	"github.com/bindwatch/bindwatch/schemas/codec"
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
// so their ring space is freed too. Kinds[i], when Kinds is set, is the
// event's kind (schemas.Kind*), carried beside the encoded value so that the
// spool can tell a bind from a listen without decoding.
type Batch struct {
	Values [][]byte
	Times  []time.Time
	Kinds  []string
	Ack    record.Ack
}

// Run encodes each batch of records from in into one buffer and sends the
// framed messages, as slices of it, on out; it closes out when in is closed.
// A record that fails to encode is counted and left out of its batch.
//
// With a sealer, each batch also carries a seal record after its records
// (and now and then a host_key record before them): see Sealer.
func Run(ctx context.Context, enc codec.Encoder, in <-chan []record.Record, out chan<- Batch, stats *StageStats, sealer *Sealer, log *slog.Logger) error {
	defer close(out)
	// Sized from the previous batch, so a batch usually takes one allocation.
	perRecord := 256
	var seqs []int64
	for batch := range in {
		buf := make([]byte, 0, perRecord*(len(batch)+2))
		ends := make([]int, 0, len(batch)+2)
		times := make([]time.Time, 0, len(batch)+2)
		kinds := make([]string, 0, len(batch)+2)
		seqs = seqs[:0]
		var ack record.Ack
		add := func(ev *schemas.BindEvent) {
			next, err := enc.Append(buf, ev)
			if err != nil {
				stats.Errors.Add(1)
				log.Error("dropping an event that does not encode", "component", "encode", "kind", ev.Kind, "seq", ev.Seq, "error", err)
				return
			}
			buf = next
			ends = append(ends, len(buf))
			times = append(times, ev.Time)
			kinds = append(kinds, ev.Kind)
			seqs = append(seqs, ev.Seq)
		}
		if sealer != nil {
			if hk := sealer.hostKey(); hk != nil {
				add(hk)
			}
		}
		for i := range batch {
			ack = ack.Later(batch[i].Ack)
			add(&batch[i].Event)
		}
		if sealer != nil && len(ends) > 0 {
			// The framing is fixed per encoder: the body is what follows
			// the header of the first message.
			bodies := make([][]byte, len(ends))
			start := 0
			for i, end := range ends {
				bodies[i], _ = codec.Body(buf[start:end])
				start = end
			}
			if s := sealer.seal(slices.Clone(seqs), bodies); s != nil {
				add(s)
			}
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
		out <- Batch{Values: msgs, Times: times, Kinds: kinds, Ack: ack}
	}
	return nil
}
