package integrity

import (
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/bindwatch/bindwatch/audit/state"
	"github.com/bindwatch/bindwatch/internal/seal"
)

// agent writes one host's sealed records as the agent does; the body of a
// record is stood in for by its text.
type agent struct {
	key            ed25519.PrivateKey
	hostID, bootID string
	seq, offset    int64
	batch          []Record
	t0             time.Time
}

func newAgent(t *testing.T, hostID string) *agent {
	_, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &agent{key: key, hostID: hostID, bootID: "boot-1", t0: time.Unix(1_800_000_000, 0)}
}

func (a *agent) pub() ed25519.PublicKey { return a.key.Public().(ed25519.PublicKey) }

// record makes the next record (not yet sealed).
func (a *agent) record(kind string, port int32) Record {
	a.seq++
	a.offset++
	ev := state.Event{Kind: kind, HostID: a.hostID, BootID: a.bootID, Seq: a.seq, Time: a.t0.Add(time.Duration(a.offset) * time.Second), Port: port}
	if kind == state.KindHostKey {
		ev.PublicKey = a.pub()
	}
	r := Record{Event: ev, Digest: sha256.Sum256(fmt.Appendf(nil, "%+v", ev)), Offset: a.offset, At: ev.Time}
	a.batch = append(a.batch, r)
	return r
}

// seal ends the batch.
func (a *agent) seal() Record {
	a.seq++
	a.offset++
	m := seal.NewMessage(nil, a.hostID, a.bootID, a.seq)
	var seqs []int64
	for _, r := range a.batch {
		m.AddDigest(r.Event.Seq, r.Digest)
		seqs = append(seqs, r.Event.Seq)
	}
	a.batch = nil
	at := a.t0.Add(time.Duration(a.offset) * time.Second)
	return Record{Event: state.Event{Kind: state.KindSeal, HostID: a.hostID, BootID: a.bootID, Seq: a.seq, Time: at,
		SealedSeqs: seqs, Signature: ed25519.Sign(a.key, m.Bytes())}, Offset: a.offset, At: at}
}

func offer(v *Verifier, rs ...Record) Outcome {
	var o Outcome
	for _, r := range rs {
		v.Offer(r, &o)
	}
	return o
}

func seqsOf(rs []*Record) []int64 {
	var out []int64
	for _, r := range rs {
		out = append(out, r.Event.Seq)
	}
	return out
}

func reasons(ps []Problem) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Reason)
	}
	return out
}

// The first key that seals a host's records is pinned; its records are
// held until their seal and then released in order, the seal last.
func TestTrustOnFirstUse(t *testing.T) {
	v := New(nil)
	a := newAgent(t, "h1")
	o := offer(v, a.record(state.KindHostKey, 0), a.record("listen", 22), a.record("listen", 80))
	if len(o.Ready) != 0 || len(o.Problems) != 0 {
		t.Fatalf("before the seal: %+v", o)
	}
	if off, ok := v.OldestPending(); !ok || off != 1 {
		t.Fatalf("oldest pending %d %v, want offset 1", off, ok)
	}
	o = offer(v, a.seal())
	if got := seqsOf(o.Ready); !slices.Equal(got, []int64{1, 2, 3, 4}) || len(o.Problems) != 0 {
		t.Fatalf("after the seal: ready %v, problems %v", got, o.Problems)
	}
	if !v.Key("h1").Equal(a.pub()) || !slices.Equal(o.Pinned, []string{"h1"}) || !slices.Equal(o.Sealing, []string{"h1"}) {
		t.Fatalf("pinned %x (%v), want the agent's key", v.Key("h1"), o.Pinned)
	}
	if _, ok := v.OldestPending(); ok {
		t.Fatal("records still pending")
	}
}

// F1 with a pinned key: a forger's new boot, seq jump and empty sweep in
// the host's name are never released; the host's next seal refuses them.
func TestForgedRecordsAreRefused(t *testing.T) {
	v := New(nil)
	a := newAgent(t, "h1")
	offer(v, a.record(state.KindHostKey, 0), a.record("listen", 4444), a.seal())

	forger := newAgent(t, "h1") // its own key, the victim's host id
	forger.offset = 100
	boot := forger.record("listen", 1)
	boot.Event.BootID, boot.Event.Time = "forged-boot", time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)
	jump := forger.record("listen", 2)
	jump.Event.BootID, jump.Event.Seq = a.bootID, 1<<62
	sweep := forger.record(state.KindSnapshotEnd, 0)
	sweep.Event.BootID, sweep.Event.SnapshotID = a.bootID, "forged"
	o := offer(v, boot, jump, sweep)
	if len(o.Ready) != 0 {
		t.Fatalf("forged records released: %v", seqsOf(o.Ready))
	}
	a.offset = 200
	o = offer(v, a.record("listen", 5555), a.seal())
	if got := seqsOf(o.Ready); !slices.Equal(got, []int64{4, 5}) {
		t.Fatalf("ready %v, want the host's listen and its seal", got)
	}
	if got := reasons(o.Problems); !slices.Equal(got, []string{ReasonUnsealed, ReasonUnsealed, ReasonUnsealed}) {
		t.Fatalf("problems %v", got)
	}
}

// A record under a seq the host sealed, with other bytes, is refused as
// forged; the host's own record is released.
func TestSameSeqOtherBytes(t *testing.T) {
	v := New(nil)
	a := newAgent(t, "h1")
	offer(v, a.record(state.KindHostKey, 0), a.seal())
	real := a.record("listen", 22)
	fake := real
	fake.Event.Port, fake.Digest, fake.Offset = 23, sha256.Sum256([]byte("fake")), real.Offset-1 // before it
	o := offer(v, fake, real, a.seal())
	if len(o.Ready) != 2 || o.Ready[0].Event.Port != 22 {
		t.Fatalf("ready %+v", o.Ready)
	}
	if got := reasons(o.Problems); !slices.Equal(got, []string{ReasonForged}) {
		t.Fatalf("problems %v", got)
	}
}

// A host that seals with a new key and no rotation is refused: unknown_key,
// or cloned while the pinned key seals too.
func TestNewKeyWithoutRotation(t *testing.T) {
	v := New(nil)
	a := newAgent(t, "h1")
	offer(v, a.record(state.KindHostKey, 0), a.seal())
	b := newAgent(t, "h1")
	b.seq, b.offset = 1000, 10
	o := offer(v, b.record(state.KindHostKey, 0), b.record("listen", 9999), b.seal())
	if len(o.Ready) != 0 || !slices.Equal(reasons(o.Problems), []string{ReasonCloned}) {
		t.Fatalf("second key while the first seals: ready %v, problems %v", seqsOf(o.Ready), o.Problems)
	}
	// Much later (a reinstall): unknown_key.
	b.t0 = b.t0.Add(time.Hour)
	o = offer(v, b.record("listen", 9998), b.seal())
	if len(o.Ready) != 0 || !slices.Equal(reasons(o.Problems), []string{ReasonUnknownKey}) {
		t.Fatalf("a new key an hour later: ready %v, problems %v", seqsOf(o.Ready), o.Problems)
	}
	if !v.Key("h1").Equal(a.pub()) {
		t.Fatal("the pinned key changed")
	}
}

// A rotation signed by the old key moves the pin; one signed by another
// key is refused.
func TestKeyRotation(t *testing.T) {
	v := New(nil)
	a := newAgent(t, "h1")
	offer(v, a.record(state.KindHostKey, 0), a.seal())
	_, next, _ := ed25519.GenerateKey(nil)
	nextPub := next.Public().(ed25519.PublicKey)

	rot := func(signer ed25519.PrivateKey) Record {
		r := a.record(state.KindKeyRotation, 0)
		r.Event.PublicKey = nextPub
		r.Event.Signature = ed25519.Sign(signer, seal.RotationMessage("h1", a.bootID, r.Event.Seq, nextPub))
		return r
	}
	forged := rot(next) // signed by the new key itself
	a.batch = nil
	o := offer(v, forged)
	if !slices.Equal(reasons(o.Problems), []string{ReasonBadRotation}) || !v.Key("h1").Equal(a.pub()) {
		t.Fatalf("a rotation the old key did not sign: %v, key moved %v", o.Problems, !v.Key("h1").Equal(a.pub()))
	}
	r := rot(a.key)
	a.key = next
	o = offer(v, r, a.record("listen", 22), a.seal())
	if len(o.Problems) != 0 || len(o.Ready) != 3 || !v.Key("h1").Equal(nextPub) {
		t.Fatalf("rotation: ready %v, problems %v, key moved %v", seqsOf(o.Ready), o.Problems, v.Key("h1").Equal(nextPub))
	}
}

// A host that never sealed is applied as it comes, reported once as
// unsigned; once it announces a key, its records wait for seals.
func TestUnsignedHost(t *testing.T) {
	v := New(nil)
	a := newAgent(t, "old")
	o := offer(v, a.record("listen", 22), a.record("listen", 80))
	a.batch = nil
	if len(o.Ready) != 2 || !slices.Equal(reasons(o.Problems), []string{ReasonUnsigned}) {
		t.Fatalf("unsigned host: ready %v, problems %v", seqsOf(o.Ready), o.Problems)
	}
	o = offer(v, a.record(state.KindHostKey, 0), a.record("listen", 443))
	if len(o.Ready) != 0 {
		t.Fatalf("after its key: released %v before a seal", seqsOf(o.Ready))
	}
	o = offer(v, a.seal())
	if len(o.Ready) != 3 || !slices.Equal(o.Sealing, []string{"old"}) {
		t.Fatalf("sealed: ready %v, sealing %v", seqsOf(o.Ready), o.Sealing)
	}
}

// With audit.host_keys, only listed hosts, with their listed key.
func TestConfiguredKeys(t *testing.T) {
	a := newAgent(t, "h1")
	b := newAgent(t, "h2")
	v := New(map[string]ed25519.PublicKey{"h1": a.pub()})
	o := offer(v, b.record(state.KindHostKey, 0), b.record("listen", 1), b.seal())
	if len(o.Ready) != 0 || !slices.Equal(reasons(o.Problems), []string{ReasonUnlisted, ReasonUnlisted, ReasonUnlisted}) {
		t.Fatalf("unlisted host: ready %v, problems %v", seqsOf(o.Ready), o.Problems)
	}
	forger := newAgent(t, "h1")
	o = offer(v, forger.record(state.KindHostKey, 0), forger.record("listen", 1), forger.seal())
	if len(o.Ready) != 0 || !slices.Equal(reasons(o.Problems), []string{ReasonUnknownKey}) {
		t.Fatalf("listed host, other key: ready %v, problems %v", seqsOf(o.Ready), o.Problems)
	}
	a.offset = 100
	o = offer(v, a.record("listen", 22), a.seal())
	if len(o.Ready) != 2 || len(o.Problems) != 0 {
		t.Fatalf("listed host, its key (no host_key record needed): ready %v, problems %v", seqsOf(o.Ready), o.Problems)
	}
}

// Records that never get a seal are bounded per host.
func TestPendingIsBounded(t *testing.T) {
	v := New(nil)
	v.MaxPending = 10
	a := newAgent(t, "h1")
	offer(v, a.record(state.KindHostKey, 0), a.seal())
	var o Outcome
	for range 15 {
		v.Offer(a.record("listen", 1), &o)
	}
	if v.Pending() != 10 || len(o.Problems) != 5 || o.Problems[0].Reason != ReasonUnsealed {
		t.Fatalf("pending %d, problems %v", v.Pending(), reasons(o.Problems))
	}
}

// BenchmarkVerify measures the audit's verification: one SHA-256 per
// record (done by the caller; here precomputed) and one Ed25519
// verification per seal of 500 records.
func BenchmarkVerify(b *testing.B) {
	v := New(nil)
	_, key, _ := ed25519.GenerateKey(nil)
	a := &agent{key: key, hostID: "h1", bootID: "b1", t0: time.Unix(1_800_000_000, 0)}
	var o Outcome
	v.Offer(a.record(state.KindHostKey, 0), &o)
	v.Offer(a.seal(), &o)
	batches := make([][]Record, 16)
	for i := range batches {
		for range 500 {
			batches[i] = append(batches[i], a.record("listen", 1))
		}
		batches[i] = append(batches[i], a.seal())
	}
	b.ResetTimer()
	n := 0
	start := time.Now()
	for i := 0; b.Loop(); i++ {
		for _, r := range batches[i%len(batches)] {
			o = Outcome{Ready: o.Ready[:0], Problems: o.Problems[:0]}
			v.Offer(r, &o)
			if len(o.Problems) > 0 {
				// Replayed batches: already applied records come again.
				b.Fatalf("%v", o.Problems)
			}
		}
		n++
	}
	secs := time.Since(start).Seconds()
	b.ReportMetric(float64(n)/secs, "seals/s")
	b.ReportMetric(float64(n*500)/secs, "records/s")
}
