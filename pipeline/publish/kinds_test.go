package publish

import (
	"context"
	"testing"
	"time"

	"github.com/bindwatch/bindwatch/internal/spool"
	"github.com/bindwatch/bindwatch/pipeline/encode"
	"github.com/bindwatch/bindwatch/pipeline/record"
	"github.com/bindwatch/bindwatch/schemas"
	"github.com/bindwatch/bindwatch/test/sinktest"
	"github.com/bindwatch/bindwatch/test/testenv"
)

// TestSpoolKinds: every record kind has a spool kind of its own, below
// the spool's bound, and is named back by it; binds and seals alone are
// expendable.
func TestSpoolKinds(t *testing.T) {
	kinds := []string{schemas.KindBind, schemas.KindListen, schemas.KindClose, schemas.KindSnapshot,
		schemas.KindSnapshotEnd, schemas.KindSuppressed, schemas.KindHeartbeat, schemas.KindStop,
		schemas.KindHostKey, schemas.KindSeal, schemas.KindKeyRotation}
	seen := map[spool.Kind]string{}
	for _, k := range kinds {
		sk := SpoolKind(k)
		if sk == spool.KindUnknown || sk >= spool.NumKinds || seen[sk] != "" {
			t.Errorf("record kind %s has spool kind %d (taken by %q)", k, sk, seen[sk])
		}
		seen[sk] = k
		if SpoolKindName(sk) != k {
			t.Errorf("spool kind %d is named %q, want %q", sk, SpoolKindName(sk), k)
		}
		if got, want := Expendable.Has(sk), k == schemas.KindBind; got != want {
			t.Errorf("%s expendable: %v, want %v", k, got, want)
		}
	}
	// A seal of binds only goes with them; it is counted as a seal.
	if sk := SpoolKind(encode.SealOfBinds); !Expendable.Has(sk) || seen[sk] != "" || SpoolKindName(sk) != schemas.KindSeal {
		t.Errorf("a seal of binds has spool kind %d (taken by %q), named %q, expendable %v", sk, seen[sk], SpoolKindName(sk), Expendable.Has(sk))
	}
	if SpoolKind("no such kind") != spool.KindUnknown || SpoolKindName(spool.KindUnknown) != "unknown" {
		t.Error("an unknown kind is not spool.KindUnknown, named unknown")
	}
}

// TestFullSpoolKeepsListens runs the stage against a sink that is down,
// with a spool too small for the outage: batches of binds closed by a
// seal and, one in four, a listen among the binds, sealed as the encode
// stage seals (each run of binds and the listen's run each followed by its
// own seal). The spool drops bind-only runs and their seals and says so by
// kind; once the sink is back every listen is delivered with its seal.
func TestFullSpoolKeepsListens(t *testing.T) {
	const n, size, capacity, total = 500, 200, 12, 40
	mixed := func(i int) encode.Batch {
		b := seqBatch(uint64(i*n), n, size)
		b.Kinds = make([]string, n)
		for j := range b.Kinds {
			b.Kinds[j] = schemas.KindBind
		}
		if i%4 == 0 {
			b.Kinds[n/2-1] = encode.SealOfBinds
			b.Kinds[n/2] = schemas.KindListen
			b.Kinds[n/2+1] = schemas.KindSeal
		}
		b.Kinds[n-1] = encode.SealOfBinds // as the encode stage closes a run of binds
		return b
	}
	msgs := seqMsgs(0, n, size)
	for i := range msgs {
		msgs[i].Kind = SpoolKind(schemas.KindBind)
	}
	rec := int64(32)
	for _, m := range msgs {
		rec += 1 + 16 + int64(len(m.Key)) + int64(len(m.Value))
	}
	sp, err := spool.Open(t.TempDir(), spool.Options{MaxBytes: capacity * rec, SegmentBytes: 4 * rec, Expendable: Expendable,
		KindNames: SpoolKinds[:], Logger: quiet, OnDrop: func(spool.Drop) {}})
	if err != nil {
		t.Fatal(err)
	}
	fake := &sinktest.Sink{}
	fake.SetDown(true)
	in := make(chan encode.Batch, 4)
	var stats StageStats
	var delivered record.Ack
	got := make(chan record.Ack, total)
	s := &Stage{Sink: fake, Spool: sp, Key: []byte("host"), ShutdownTimeout: 5 * time.Second,
		Stats: &stats, Logger: quiet, MinBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond,
		Observer: observed{delivered: func(a record.Ack) { got <- a }}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, in) }()
	defer func() {
		cancel()
		if in != nil {
			close(in)
		}
		<-done
		sp.Close()
	}()
	for i := range total {
		in <- mixed(i)
	}
	for delivered < record.Ack(total*n) {
		select {
		case delivered = <-got:
		case <-time.After(10 * time.Second):
			t.Fatalf("only %d of %d events accounted for", delivered, total*n)
		}
	}
	st := sp.Stats()
	bind, listen := SpoolKind(schemas.KindBind), SpoolKind(schemas.KindListen)
	seal, sealOfBinds := SpoolKind(schemas.KindSeal), SpoolKind(encode.SealOfBinds)
	dropped := st.DroppedMessages[spool.FullOldest]
	byKind := st.DroppedByKind[spool.FullOldest]
	if dropped == 0 || byKind[listen] != 0 || byKind[seal] != 0 || byKind[sealOfBinds] == 0 || byKind[bind]+byKind[sealOfBinds] != dropped {
		t.Fatalf("the spool dropped %d messages, by kind %v: want binds and the seals of binds only", dropped, byKind)
	}
	t.Logf("spooled %d events, %d binds dropped by the full spool", stats.Spooled.Load(), dropped)

	fake.SetDown(false)
	testenv.Eventually(t, "the spool replayed", 20*time.Second, func() bool { n, _ := sp.Len(); return n == 0 })
	listens, seals := map[uint64]bool{}, map[uint64]bool{}
	for _, m := range fake.Taken() {
		switch m.Kind {
		case listen:
			listens[seqOf(m.Value)] = true
		case seal:
			seals[seqOf(m.Value)] = true
		}
	}
	for i := 0; i < total; i += 4 {
		if seq := uint64(i*n + n/2); !listens[seq] || !seals[seq+1] {
			t.Errorf("the listen of batch %d (event %d) was not delivered with its seal: listen %v, seal %v", i, seq, listens[seq], seals[seq+1])
		}
	}
}
