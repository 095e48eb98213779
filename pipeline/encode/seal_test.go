package encode

import (
	"context"
	"crypto/ed25519"
	"github.com/bindwatch/bindwatch/schemas/codec"
	"github.com/bindwatch/bindwatch/schemas/codec/codectest"
	"io"
	"log/slog"
	"syscall"
	"testing"
	"time"

	"github.com/hamba/avro/v2"

	"github.com/bindwatch/bindwatch/internal/seal"
	"github.com/bindwatch/bindwatch/pipeline/record"
	"github.com/bindwatch/bindwatch/schemas"
)

// sealedBatches runs the encode stage with a sealer over batches of n
// records each and returns what it sent.
func sealedBatches(t *testing.T, enc codec.Encoder, s *Sealer, sizes ...int) []Batch {
	t.Helper()
	in := make(chan []record.Record, len(sizes))
	out := make(chan Batch, len(sizes))
	seq := int64(0)
	for _, n := range sizes {
		b := make([]record.Record, n)
		for i := range b {
			seq++
			b[i].Event = schemas.BindEvent{Kind: "bind", HostID: s.HostID, BootID: s.BootID, Seq: seq, Time: time.Now(), Comm: "nc"}
		}
		in <- b
	}
	close(in)
	var stats StageStats
	if err := Run(context.Background(), enc, in, out, &stats, s, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		t.Fatal(err)
	}
	var got []Batch
	for b := range out {
		got = append(got, b)
	}
	return got
}

func testSealer(t *testing.T) *Sealer {
	_, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	next := uint64(1000)
	return &Sealer{Key: key, Host: "web-1", HostID: "h1", BootID: "b1", Announce: time.Hour,
		Reserve: func(n uint64) (uint64, error) { next += n; return next - n, nil }}
}

// Each batch ends with a seal whose signature covers the seqs and bodies
// of the batch's records; the first batch starts with the host key. The
// signature is over the bodies, so re-framing a message (a Confluent id
// given late) keeps it valid.
func TestSealerSealsEachBatch(t *testing.T) {
	text := codectest.SchemaText(t, schemas.Latest)
	enc, err := codec.NewConfluentPending([]byte(text), schemas.Latest)
	if err != nil {
		t.Fatal(err)
	}
	s := testSealer(t)
	sizes := []int{3, 2}
	batches := sealedBatches(t, enc, s, sizes...)
	if len(batches) != 2 {
		t.Fatalf("%d batches", len(batches))
	}
	pub := s.Key.Public().(ed25519.PublicKey)
	for bi, b := range batches {
		want := sizes[bi] + 1
		if bi == 0 {
			want++ // the host key
		}
		if len(b.Values) != want {
			t.Fatalf("batch %d: %d messages, want %d", bi, len(b.Values), want)
		}
		for _, v := range b.Values {
			if err := codec.SetSchemaID(v, 42); err != nil { // re-framed, as the registry's late id does
				t.Fatal(err)
			}
		}
		sealMsg := b.Values[len(b.Values)-1]
		sv := decodeEvent(t, text, sealMsg)
		if sv.Kind != schemas.KindSeal || len(sv.SealedSeqs) != len(b.Values)-1 {
			t.Fatalf("batch %d: last record %+v, want a seal of the others", bi, sv)
		}
		m := seal.NewMessage(nil, "h1", "b1", sv.Seq)
		for i, v := range b.Values[:len(b.Values)-1] {
			ev := decodeEvent(t, text, v)
			if ev.Seq != sv.SealedSeqs[i] {
				t.Fatalf("sealed seq %d is record %d's %d", sv.SealedSeqs[i], i, ev.Seq)
			}
			if bi == 0 && i == 0 && (ev.Kind != schemas.KindHostKey || !pub.Equal(ed25519.PublicKey(ev.PublicKey))) {
				t.Fatalf("first record %+v, want the host key", ev)
			}
			body, _ := codec.Body(v)
			m.Add(ev.Seq, body)
		}
		if !seal.Verify(pub, m.Bytes(), sv.Signature) {
			t.Fatalf("batch %d: the seal does not verify", bi)
		}
		body, _ := codec.Body(b.Values[0])
		body[len(body)-1] ^= 1
		m = seal.NewMessage(nil, "h1", "b1", sv.Seq)
		for i, v := range b.Values[:len(b.Values)-1] {
			body, _ := codec.Body(v)
			m.Add(sv.SealedSeqs[i], body)
		}
		if seal.Verify(pub, m.Bytes(), sv.Signature) {
			t.Fatalf("batch %d: the seal verifies a changed record", bi)
		}
	}
}

func decodeEvent(t *testing.T, text string, msg []byte) schemas.BindEvent {
	t.Helper()
	body, err := codec.Body(msg)
	if err != nil {
		t.Fatal(err)
	}
	var ev schemas.BindEvent
	if err := avro.Unmarshal(avro.MustParse(text), body, &ev); err != nil {
		t.Fatal(err)
	}
	return ev
}

// BenchmarkEncodeStage measures the encode stage alone, batches of 500
// binds (the default batch size), with and without sealing: the sealing
// cost is one SHA-256 per record and one Ed25519 signature per batch.
func BenchmarkEncodeStage(b *testing.B) {
	text, _ := schemas.BindEventSchema(schemas.Latest)
	enc, err := codec.NewSingleObject([]byte(text))
	if err != nil {
		b.Fatal(err)
	}
	const size = 500
	ev := codectest.FullEvent()
	ev.Kind, ev.Holders, ev.SnapshotIncomplete, ev.SnapshotSockets = "bind", nil, nil, 0
	ev.SnapshotID, ev.SnapshotSource, ev.PortExplicit = nil, nil, nil
	batch := make([]record.Record, size)
	for i := range batch {
		batch[i].Event = *ev
		batch[i].Event.Seq = int64(i)
	}
	for _, sealed := range []bool{false, true} {
		name := "plain"
		var s *Sealer
		if sealed {
			name = "sealed"
			_, key, _ := ed25519.GenerateKey(nil)
			next := uint64(1 << 40)
			s = &Sealer{Key: key, HostID: ev.HostID, BootID: ev.BootID, Announce: time.Hour,
				Reserve: func(n uint64) (uint64, error) { next += n; return next - n, nil }}
		}
		b.Run(name, func(b *testing.B) {
			in := make(chan []record.Record)
			out := make(chan Batch, 1)
			var stats StageStats
			done := make(chan error, 1)
			go func() {
				done <- Run(context.Background(), enc, in, out, &stats, s, slog.New(slog.NewTextHandler(io.Discard, nil)))
			}()
			go func() {
				for range out {
				}
			}()
			start, cpu0 := time.Now(), cpuTime()
			for b.Loop() {
				in <- batch
			}
			close(in)
			if err := <-done; err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N*size)/time.Since(start).Seconds(), "events/s")
			// CPU time, steadier than wall time on a shared machine.
			b.ReportMetric(float64(b.N*size)/(cpuTime()-cpu0).Seconds(), "events/cpu-s")
		})
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// With Next set, the first batch starts with a key_rotation record that the
// old key signed, and its seal is the new key's.
func TestSealerRotates(t *testing.T) {
	text := codectest.SchemaText(t, schemas.Latest)
	enc, _ := codec.NewSingleObject([]byte(text))
	s := testSealer(t)
	old := s.Key.Public().(ed25519.PublicKey)
	_, next, _ := ed25519.GenerateKey(nil)
	s.Next = next
	b := sealedBatches(t, enc, s, 2)[0]
	rot := decodeEvent(t, text, b.Values[0])
	newPub := next.Public().(ed25519.PublicKey)
	if rot.Kind != schemas.KindKeyRotation || !newPub.Equal(ed25519.PublicKey(rot.PublicKey)) ||
		!seal.Verify(old, seal.RotationMessage("h1", "b1", rot.Seq, newPub), rot.Signature) {
		t.Fatalf("first record %+v, want a rotation to the new key signed by the old", rot)
	}
	sv := decodeEvent(t, text, b.Values[len(b.Values)-1])
	m := seal.NewMessage(nil, "h1", "b1", sv.Seq)
	for i, v := range b.Values[:len(b.Values)-1] {
		body, _ := codec.Body(v)
		m.Add(sv.SealedSeqs[i], body)
	}
	if !seal.Verify(newPub, m.Bytes(), sv.Signature) {
		t.Fatal("the batch is not sealed by the new key")
	}
}
