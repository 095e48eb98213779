package encode

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/bindwatch/bindwatch/audit/integrity"
	"github.com/bindwatch/bindwatch/audit/record"
	"github.com/bindwatch/bindwatch/audit/state"
	pipelinerecord "github.com/bindwatch/bindwatch/pipeline/record"
	"github.com/bindwatch/bindwatch/schemas"
	"github.com/bindwatch/bindwatch/schemas/codec"
	"github.com/bindwatch/bindwatch/schemas/codec/codectest"
)

// A batch that mixes binds and listens, as every batch does under a bind
// storm, is sealed run by run, so that a full spool giving up its binds
// (publish.Expendable: binds and the seals of binds only) leaves the
// listens with a seal that still verifies. Checked with the audit's own
// verifier: the whole batch verifies, and so does what is left of it
// without its bind runs; a seal over the whole batch would leave the
// listens unsealed (the audit would refuse them).
func TestMixedBatchSealedByRun(t *testing.T) {
	text := codectest.SchemaText(t, schemas.Latest)
	enc, err := codec.NewSingleObject([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	s := testSealer(t)
	s.announced = time.Now() // no host key in this batch
	kinds := []string{"bind", "bind", "listen", "bind", "bind", "bind", "close", "listen", "bind"}
	batch := make([]pipelinerecord.Record, len(kinds))
	for i, k := range kinds {
		batch[i].Event = schemas.BindEvent{Kind: k, HostID: "h1", BootID: "b1", Host: "web-1", Seq: int64(i + 1),
			Time: time.Now(), Comm: "nc", Protocol: "TCP", Family: "AF_INET", Addr: "0.0.0.0", Port: int32(8000 + i)}
	}
	in := make(chan []pipelinerecord.Record, 1)
	out := make(chan Batch, 1)
	in <- batch
	close(in)
	var stats StageStats
	if err := Run(context.Background(), enc, in, out, &stats, s, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		t.Fatal(err)
	}
	b := <-out
	// bind bind | listen | bind bind bind | close listen | bind: five runs.
	if runs := checkRuns(t, text, s.Key.Public().(ed25519.PublicKey), b); len(runs) != 5 {
		t.Fatalf("%d runs, want 5", len(runs))
	}
	want := []string{"bind", "bind", SealOfBinds, "listen", "seal", "bind", "bind", "bind", SealOfBinds, "close", "listen", "seal", "bind", SealOfBinds}
	if len(b.Kinds) != len(want) {
		t.Fatalf("kinds %v, want %v", b.Kinds, want)
	}
	for i := range want {
		if b.Kinds[i] != want[i] {
			t.Fatalf("kinds %v, want %v", b.Kinds, want)
		}
	}

	verify := func(keep func(kind string) bool) (ready []string, problems []integrity.Problem) {
		slow, _ := codec.NewDecoder("")
		dec, err := record.NewEventDecoder(slow)
		if err != nil {
			t.Fatal(err)
		}
		v := integrity.New(nil)
		// The verifier pins the host's key from its host_key record.
		v.Pin("h1", s.Key.Public().(ed25519.PublicKey))
		for i, msg := range b.Values {
			if !keep(b.Kinds[i]) {
				continue
			}
			var r integrity.Record
			if err := dec.Decode(context.Background(), msg, &r.Event); err != nil {
				t.Fatal(err)
			}
			body, _ := codec.Body(msg)
			r.Digest, r.Offset, r.At = sha256.Sum256(body), int64(i), time.Now()
			var o integrity.Outcome
			v.Offer(r, &o)
			for _, rr := range o.Ready {
				if rr.Event.Kind != state.KindSeal {
					ready = append(ready, rr.Event.Kind)
				}
			}
			problems = append(problems, o.Problems...)
		}
		return ready, problems
	}
	if ready, problems := verify(func(string) bool { return true }); len(problems) != 0 || len(ready) != len(kinds) {
		t.Fatalf("the whole batch: %d of %d records verified, problems %+v", len(ready), len(kinds), problems)
	}
	ready, problems := verify(func(k string) bool { return k != "bind" && k != SealOfBinds })
	if len(problems) != 0 || len(ready) != 3 {
		t.Fatalf("without its bind runs: verified %v, problems %+v; want the two listens and the close, and no problem", ready, problems)
	}
}
