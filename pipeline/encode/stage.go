package encode

import (
	"context"
	"log/slog"
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
// With a sealer, each run of binds and each run of other records of a
// batch is followed by a seal record of its own (sealRuns), and now and
// then a host_key record comes before them: see Sealer.
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
		// add encodes ev as the next message; kind is its Batch.Kinds name.
		// It returns the message's index, or -1 when ev does not encode.
		add := func(ev *schemas.BindEvent, kind string) int {
			next, err := enc.Append(buf, ev)
			if err != nil {
				stats.Errors.Add(1)
				log.Error("dropping an event that does not encode", "component", "encode", "kind", ev.Kind, "seq", ev.Seq, "error", err)
				return -1
			}
			buf = next
			ends = append(ends, len(buf))
			times = append(times, ev.Time)
			kinds = append(kinds, kind)
			seqs = append(seqs, ev.Seq)
			return len(ends) - 1
		}
		if sealer != nil {
			if hk := sealer.hostKey(); hk != nil {
				add(hk, hk.Kind)
			}
		}
		for i := range batch {
			ack = ack.Later(batch[i].Ack)
			add(&batch[i].Event, batch[i].Event.Kind)
		}
		// With a sealer, each run of binds and each run of other records
		// is followed by its own seal (sealRuns), added after the records:
		// order is where each message goes out.
		var order []int
		if sealer != nil && len(ends) > 0 {
			order = sealRuns(sealer, buf, ends, seqs, kinds, make([]int, 0, len(ends)+2), add)
		}
		msgs := make([][]byte, len(ends))
		start := 0
		for i, end := range ends {
			msgs[i] = buf[start:end:end]
			start = end
		}
		if !inOrder(order) {
			msgs, times, kinds = permute(msgs, order), permute(times, order), permute(kinds, order)
		}
		if len(ends) > 0 {
			perRecord = len(buf)/len(ends) + 16
		}
		stats.Encoded.Add(uint64(len(ends)))
		out <- Batch{Values: msgs, Times: times, Kinds: kinds, Ack: ack}
	}
	return nil
}

// SealOfBinds is the Batch.Kinds name of a seal that signs binds only: a
// full spool may give it up with the binds it signs, and must keep every
// other seal (publish.Expendable).
const SealOfBinds = "seal of binds"

// sealRuns seals a batch's records run by run: each run of binds, and each
// run of other records (listens, closes, the inventory's, host keys...), is
// followed by a seal of its own. A full spool gives up binds first, cutting
// a batch where its records change class; a seal over a whole mixed batch
// would then sign records that are gone, and the listens kept beside it
// could never be verified. A consumer sees each seal right after the
// records it signs, as before; a batch without a listen has one seal. It
// returns the order the messages go out in (indexes into ends, the seals
// appended by add after the records).
func sealRuns(sealer *Sealer, buf []byte, ends []int, seqs []int64, kinds []string, order []int, add func(*schemas.BindEvent, string) int) []int {
	n := len(ends)
	// The framing is fixed per encoder: the body is what follows the
	// header of each message.
	bodies := make([][]byte, n)
	start := 0
	for i, end := range ends {
		bodies[i], _ = codec.Body(buf[start:end])
		start = end
	}
	for first := 0; first < n; {
		binds := kinds[first] == schemas.KindBind
		last := first + 1
		for last < n && (kinds[last] == schemas.KindBind) == binds {
			last++
		}
		for i := first; i < last; i++ {
			order = append(order, i)
		}
		// The seal is encoded by add before seqs grows: it may alias them.
		if s := sealer.seal(seqs[first:last], bodies[first:last]); s != nil {
			kind := s.Kind
			if binds {
				kind = SealOfBinds
			}
			if i := add(s, kind); i >= 0 {
				order = append(order, i)
			}
		}
		first = last
	}
	return order
}

// inOrder says whether order leaves every message where it is (a batch of
// one run: its records, then its seal), or is nil.
func inOrder(order []int) bool {
	for i, j := range order {
		if i != j {
			return false
		}
	}
	return true
}

// permute is s in order: permute(s, order)[i] = s[order[i]].
func permute[T any](s []T, order []int) []T {
	out := make([]T, len(order))
	for i, j := range order {
		out[i] = s[j]
	}
	return out
}
