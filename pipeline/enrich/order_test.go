package enrich

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bindwatch/bindwatch/bpf"
	"github.com/bindwatch/bindwatch/pipeline/record"
	"github.com/bindwatch/bindwatch/schemas"
	"github.com/bindwatch/bindwatch/test/testenv"
)

// fakeRing is a ring whose writers stand at pos.
type fakeRing struct{ pos atomic.Uint64 }

func (r *fakeRing) Produced() uint64 { return r.pos.Load() }

// orderRun runs e with ordering on ring (read from position read) and
// returns its inputs and the seqs it sends, in order.
type orderRun struct {
	t      *testing.T
	e      *Enricher
	ring   chan record.Raw
	agent  chan record.Record
	out    chan record.Record
	errc   chan error
	closed bool
}

func startOrdered(t *testing.T, ring Ring, read uint64) *orderRun {
	t.Helper()
	e, _, _ := fixtureEnricher(t)
	if ring != nil {
		e.OrderWith(ring, read)
	}
	r := &orderRun{t: t, e: e, ring: make(chan record.Raw), agent: make(chan record.Record, 16),
		out: make(chan record.Record, 64), errc: make(chan error, 1)}
	go func() { r.errc <- e.Run(t.Context(), r.ring, r.agent, r.out) }()
	t.Cleanup(r.close)
	return r
}

func (r *orderRun) ringRecord(seq, ack uint64) {
	r.ring <- record.Raw{Event: bpf.Event{Seq: seq, Kind: bpf.KindBind, Family: bpf.AFInet}, Ack: record.Ack(ack)}
}

// agentRecords sends a reservation of n records from seq first.
func (r *orderRun) agentRecords(first int64, n int) {
	for i := range n {
		r.agent <- record.Record{Event: schemas.BindEvent{Kind: schemas.KindSnapshot, Seq: first + int64(i)}, Rest: n - 1 - i}
	}
}

// held waits until n agent records were held.
func (r *orderRun) held(n uint64) {
	r.t.Helper()
	testenv.Eventually(r.t, fmt.Sprintf("%d agent records held", n), 5*time.Second, func() bool { return r.e.Stats().OrderHeld >= n })
}

// expect reads len(seqs) records and checks their seqs, and that agent
// records carry no token.
func (r *orderRun) expect(seqs ...int64) {
	r.t.Helper()
	for i, want := range seqs {
		select {
		case rec := <-r.out:
			if rec.Event.Seq != want {
				r.t.Fatalf("record %d has seq %d, want %d (order %v)", i, rec.Event.Seq, want, seqs)
			}
			if rec.Rest != 0 || (rec.Event.Kind == schemas.KindSnapshot && rec.Ack != 0) {
				r.t.Fatalf("record %d: Rest %d, Ack %d", i, rec.Rest, rec.Ack)
			}
		case <-time.After(5 * time.Second):
			r.t.Fatalf("record %d (seq %d) not sent", i, want)
		}
	}
}

// nothing checks that no record is sent for d.
func (r *orderRun) nothing(d time.Duration) {
	r.t.Helper()
	select {
	case rec := <-r.out:
		r.t.Fatalf("seq %d sent, want it held", rec.Event.Seq)
	case <-time.After(d):
	}
}

func (r *orderRun) close() {
	if r.closed {
		return
	}
	r.closed = true
	close(r.ring)
	close(r.agent)
	for range r.out {
	}
	if err := <-r.errc; err != nil {
		r.t.Error(err)
	}
}

// A snapshot reserved while ring records numbered before it are still in
// the ring goes out after them, its records together, before the ring
// record numbered after it.
func TestAgentRecordsWaitForRingRecordsNumberedBefore(t *testing.T) {
	ring := &fakeRing{}
	ring.pos.Store(200) // two records reserved in the ring
	r := startOrdered(t, ring, 0)
	r.agentRecords(10, 2)
	r.held(1)
	r.nothing(20 * time.Millisecond)
	r.ringRecord(8, 100)
	r.expect(8)
	r.ringRecord(9, 200)
	r.expect(9, 10, 11)
	ring.pos.Store(300)
	r.ringRecord(12, 300)
	r.expect(12)
	if s := r.e.Stats(); s.OrderHeld != 1 || s.OrderExpired != 0 {
		t.Errorf("stats %+v", s)
	}
}

// The ring passing the held record's seq releases it before that ring
// record, which waits for the rest of the reservation.
func TestLaterRingRecordWaitsForTheWholeReservation(t *testing.T) {
	ring := &fakeRing{}
	ring.pos.Store(1 << 20) // far ahead: released by seq, not by position
	r := startOrdered(t, ring, 0)
	r.agent <- record.Record{Event: schemas.BindEvent{Kind: schemas.KindSnapshot, Seq: 10}, Rest: 2}
	r.held(1)
	r.ringRecord(8, 100)
	r.ringRecord(13, 200)
	r.expect(8, 10)
	r.nothing(20 * time.Millisecond) // 13 waits for 11 and 12
	r.agent <- record.Record{Event: schemas.BindEvent{Kind: schemas.KindSnapshot, Seq: 11}, Rest: 1}
	r.agent <- record.Record{Event: schemas.BindEvent{Kind: schemas.KindSnapshotEnd, Seq: 12}}
	r.expect(11, 12, 13)
}

// A ring that has nothing unread lets an agent record through at once.
func TestIdleRingHoldsNothing(t *testing.T) {
	ring := &fakeRing{}
	ring.pos.Store(500)
	r := startOrdered(t, ring, 500)
	r.agentRecords(7, 1)
	r.expect(7)
	r.ringRecord(8, 600)
	r.expect(8)
	ring.pos.Store(600)
	r.agentRecords(9, 3)
	r.expect(9, 10, 11)
	if s := r.e.Stats(); s.OrderHeld != 0 {
		t.Errorf("%d records held with nothing unread", s.OrderHeld)
	}
}

// A ring position the ring never delivers (a record capture skipped) holds
// an agent record orderIdle at most, counted.
func TestHoldIsBounded(t *testing.T) {
	ring := &fakeRing{}
	ring.pos.Store(100)
	r := startOrdered(t, ring, 0)
	start := time.Now()
	r.agentRecords(5, 1)
	r.expect(5)
	took := time.Since(start)
	if took < orderIdle || took > orderMax {
		t.Errorf("held %v, want about %v", took, orderIdle)
	}
	if s := r.e.Stats(); s.OrderHeld != 1 || s.OrderExpired != 1 {
		t.Errorf("stats %+v", s)
	}
	// A ring that keeps delivering, never reaching the position nor the
	// seq, holds it orderMax at most.
	ring.pos.Store(1 << 20)
	start = time.Now()
	r.agentRecords(1000, 1)
	r.held(2)
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		for seq := uint64(10); ; seq++ {
			select {
			case <-stop:
				return
			case r.ring <- record.Raw{Event: bpf.Event{Seq: seq, Family: bpf.AFInet}, Ack: record.Ack(100 + seq)}:
				time.Sleep(10 * time.Millisecond)
			}
		}
	}()
	for rec := range r.out {
		if rec.Event.Seq == 1000 {
			break
		}
	}
	close(stop)
	<-stopped
	if took := time.Since(start); took < orderMax || took > 3*orderMax {
		t.Errorf("held %v with the ring trickling, want about %v", took, orderMax)
	}
	if s := r.e.Stats(); s.OrderExpired != 2 {
		t.Errorf("stats %+v", s)
	}
}

// When capture ends, nothing is waited for.
func TestRingClosedReleasesHeld(t *testing.T) {
	ring := &fakeRing{}
	ring.pos.Store(100)
	r := startOrdered(t, ring, 0)
	r.agentRecords(5, 1)
	r.held(1)
	r.closed = true
	close(r.ring)
	r.expect(5)
	close(r.agent)
	if _, ok := <-r.out; ok {
		t.Fatal("out not closed")
	}
	if err := <-r.errc; err != nil {
		t.Fatal(err)
	}
	if s := r.e.Stats(); s.OrderExpired != 0 {
		t.Errorf("stats %+v", s)
	}
}

// Without OrderWith, Run passes each input on as it comes.
func TestUnorderedPassesThrough(t *testing.T) {
	r := startOrdered(t, nil, 0)
	r.agentRecords(10, 1)
	r.expect(10)
	r.ringRecord(3, 100)
	r.expect(3)
}

// A reservation whose records stop coming holds the ring orderMax at most,
// counted.
func TestUnfinishedReservationIsBounded(t *testing.T) {
	ring := &fakeRing{}
	r := startOrdered(t, ring, 0)
	r.agent <- record.Record{Event: schemas.BindEvent{Kind: schemas.KindSnapshot, Seq: 10}, Rest: 1}
	r.expect(10) // nothing unread in the ring: at once
	start := time.Now()
	go r.ringRecord(12, 100)
	r.expect(12)
	if took := time.Since(start); took < orderMax || took > 3*orderMax {
		t.Errorf("the ring held %v, want about %v", took, orderMax)
	}
	if s := r.e.Stats(); s.OrderExpired != 1 {
		t.Errorf("stats %+v", s)
	}
}

// An agent record that comes after a ring record numbered after it is
// sent at once, and counted: Run could not have held that ring record.
func TestLateAgentRecordIsCounted(t *testing.T) {
	ring := &fakeRing{}
	ring.pos.Store(1 << 20)
	r := startOrdered(t, ring, 0)
	r.ringRecord(12, 100)
	r.expect(12)
	r.agentRecords(10, 1)
	r.expect(10)
	if s := r.e.Stats(); s.OrderLate != 1 || s.OrderHeld != 0 {
		t.Errorf("stats %+v", s)
	}
}
