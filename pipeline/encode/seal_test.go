package encode

import (
	"context"
	"crypto/ed25519"
	"fmt"
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

// Each batch's records are sealed run by run: a run of binds, or of other
// records (the host key the first batch starts with), is followed by a seal
// whose signature covers the seqs and bodies of exactly that run. The
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
			want += 2 // the host key, and its seal
		}
		if len(b.Values) != want {
			t.Fatalf("batch %d: %d messages, want %d", bi, len(b.Values), want)
		}
		for _, v := range b.Values {
			if err := codec.SetSchemaID(v, 42); err != nil { // re-framed, as the registry's late id does
				t.Fatal(err)
			}
		}
		runs := checkRuns(t, text, pub, b)
		if bi == 0 {
			if len(runs) != 2 || runs[0][0].Kind != schemas.KindHostKey || !pub.Equal(ed25519.PublicKey(runs[0][0].PublicKey)) {
				t.Fatalf("batch 0: runs %+v, want the host key sealed alone, then the binds", runs)
			}
			if b.Kinds[1] != schemas.KindSeal || b.Kinds[len(b.Kinds)-1] != SealOfBinds {
				t.Fatalf("batch 0: kinds %v, want the host key's seal a seal and the binds' a seal of binds", b.Kinds)
			}
		}
		body, _ := codec.Body(b.Values[len(b.Values)-2])
		body[len(body)-1] ^= 1
		if checkRunsErr(text, pub, b) == nil {
			t.Fatalf("batch %d: the seal verifies a changed record", bi)
		}
	}
}

// checkRuns checks that b is runs of records each followed by a seal that
// covers exactly that run and verifies with pub; it returns the runs.
func checkRuns(t *testing.T, text string, pub ed25519.PublicKey, b Batch) [][]schemas.BindEvent {
	t.Helper()
	runs, err := runsOf(text, pub, b)
	if err != nil {
		t.Fatal(err)
	}
	return runs
}

func checkRunsErr(text string, pub ed25519.PublicKey, b Batch) error {
	_, err := runsOf(text, pub, b)
	return err
}

func runsOf(text string, pub ed25519.PublicKey, b Batch) ([][]schemas.BindEvent, error) {
	var runs [][]schemas.BindEvent
	var run []schemas.BindEvent
	var bodies [][]byte
	for i, v := range b.Values {
		body, err := codec.Body(v)
		if err != nil {
			return nil, err
		}
		var ev schemas.BindEvent
		if err := avro.Unmarshal(avro.MustParse(text), body, &ev); err != nil {
			return nil, err
		}
		if ev.Kind != schemas.KindSeal {
			run, bodies = append(run, ev), append(bodies, body)
			continue
		}
		if len(ev.SealedSeqs) != len(run) || len(run) == 0 {
			return nil, fmt.Errorf("message %d: a seal of %d records after a run of %d", i, len(ev.SealedSeqs), len(run))
		}
		m := seal.NewMessage(nil, "h1", "b1", ev.Seq)
		for j, r := range run {
			if r.Seq != ev.SealedSeqs[j] {
				return nil, fmt.Errorf("message %d: sealed seq %d is the run's record %d's %d", i, ev.SealedSeqs[j], j, r.Seq)
			}
			m.Add(r.Seq, bodies[j])
		}
		if !seal.Verify(pub, m.Bytes(), ev.Signature) {
			return nil, fmt.Errorf("message %d: the seal does not verify", i)
		}
		runs, run, bodies = append(runs, run), nil, nil
	}
	if len(run) > 0 {
		return nil, fmt.Errorf("%d records after the last seal", len(run))
	}
	return runs, nil
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
	if runs := checkRuns(t, text, newPub, b); len(runs) != 2 {
		t.Fatalf("%d runs, want the rotation's and the binds', both sealed by the new key", len(runs))
	}
}
