package enrich

import (
	"time"

	"github.com/bindwatch/bindwatch/pipeline/record"
)

// Ring is where the ring buffer's writers stand: the position after the
// last record the kernel reserved in it, comparable with the delivery
// tokens (record.Ack) of the records read from it. bpf.Reader has it.
type Ring interface {
	Produced() uint64
}

// How long Run holds one of the agent's own records for the ring records
// numbered before it: at most orderIdle while no ring record arrives, and
// orderMax in all. A hold that runs out is counted (Stats.OrderExpired)
// and the record goes on: a ring record the merge cannot account for (one
// skipped as malformed, one whose program was preempted between taking its
// seq and reserving its space) delays it by no more than that.
const (
	orderIdle = 100 * time.Millisecond
	orderMax  = time.Second
)

// OrderWith makes Run put the agent's own records (snapshots, heartbeats,
// suppressed reports) among the ring's records in seq order, with ring the
// ring those are read from and read the reader's position before the
// first of them (bpf.Reader.Position, before capture starts). Without it,
// Run passes each input on as it comes.
//
// The agent reserves a record's seq (bpf.Probe.ReserveSeq) before sending
// it; a ring record numbered before it has then either been reserved in
// the ring (at a position below what Produced says once the record
// arrives here) or is about to be, within the few instructions between
// the program's seq and its reservation. So Run holds the record until
// the ring's records up to that position have come, or one numbered after
// it, whichever is first: holes in the numbering (drops, an unused
// reservation) do not hold it, since it waits for ring positions, not
// for seqs.
func (e *Enricher) OrderWith(ring Ring, read uint64) {
	e.ring, e.ringRead = ring, read
}

// merge is Run's state for ordering the two inputs.
type merge struct {
	e   *Enricher
	out chan<- record.Record
	// lastAck is the ring position after the last ring record received;
	// maxSeq the highest seq among them (0 before any).
	lastAck uint64
	maxSeq  uint64
	// held is an agent record waiting (holding) for ring records numbered
	// before it: until the ring reaches heldPos, or a later seq comes.
	// heldAt is when the wait began, progress when a ring record last
	// arrived. Kept by value, as stash: a pointer to the record taken
	// would move every agent record to the heap.
	held             record.Record
	holding          bool
	heldRest         int
	heldPos          uint64
	heldAt, progress time.Time
	// groupLeft counts the records of the reservation last sent that are
	// still to come: until they have, no ring record goes out (they are
	// numbered after the whole reservation). stash is a ring record that
	// came meanwhile. groupAt is when the group began.
	groupLeft int
	groupAt   time.Time
	stash     record.Record
	stashed   bool
	timer     *time.Timer
}

func newMerge(e *Enricher, out chan<- record.Record) *merge {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &merge{e: e, out: out, lastAck: e.ringRead, timer: t}
}

// ringOpen says whether ring records are read now (not while a
// reservation's records are on their way).
func (m *merge) ringOpen() bool { return m.groupLeft == 0 }

// agentOpen says whether agent records are read now (not while one waits).
func (m *merge) agentOpen() bool { return !m.holding }

// waiting is the timer's channel while a wait runs, else nil.
func (m *merge) waiting() <-chan time.Time {
	if !m.holding && m.groupLeft == 0 {
		return nil
	}
	return m.timer.C
}

// ring passes on a ring record, rec (already enriched), with its seq.
func (m *merge) ring(rec *record.Record, seq uint64) {
	m.lastAck = max(m.lastAck, uint64(rec.Ack))
	m.maxSeq = max(m.maxSeq, seq)
	if m.holding {
		m.progress = time.Now()
		if int64(seq) > m.held.Event.Seq {
			// Numbered after the held record: the ring has passed it.
			m.release(false)
			if m.groupLeft > 0 {
				m.stash, m.stashed = *rec, true
				return
			}
		}
	}
	m.out <- *rec
	if m.holding && m.lastAck >= m.heldPos {
		m.release(false)
	}
}

// agent takes one of the agent's own records, rest the records of its
// reservation that follow it.
func (m *merge) agent(rec record.Record, rest int, ringClosed bool) {
	if m.groupLeft > 0 {
		// The rest of a reservation already let through.
		m.send(rec, rest)
		return
	}
	if m.maxSeq > uint64(rec.Event.Seq) {
		m.e.orderLate.Add(1) // too late to put it before them
		m.send(rec, rest)
		return
	}
	if ringClosed || m.e.ring == nil {
		m.send(rec, rest)
		return
	}
	pos := m.e.ring.Produced()
	if m.lastAck >= pos {
		m.send(rec, rest)
		return
	}
	m.held, m.holding, m.heldRest, m.heldPos = rec, true, rest, pos
	m.heldAt, m.progress = time.Now(), time.Now()
	m.e.orderHeld.Add(1)
	m.timer.Reset(orderIdle)
}

// release sends the held record; expired says its wait ran out.
func (m *merge) release(expired bool) {
	rec, rest := m.held, m.heldRest
	m.held, m.holding = record.Record{}, false
	m.e.orderWaitedNS.Add(int64(time.Since(m.heldAt)))
	m.timer.Stop()
	if expired {
		m.e.orderExpired.Add(1)
	}
	m.send(rec, rest)
}

// send passes on an agent record and, after the last of its reservation,
// the ring record that waited for them.
func (m *merge) send(rec record.Record, rest int) {
	m.e.CompleteSnapshot(&rec.Event)
	m.out <- rec
	if m.groupLeft == 0 && rest > 0 {
		m.groupAt = time.Now()
		m.timer.Reset(orderMax)
	}
	m.groupLeft = rest
	if rest == 0 {
		m.endGroup(false)
	}
}

// endGroup stops waiting for a reservation's records and sends the stashed
// ring record; expired says the wait ran out.
func (m *merge) endGroup(expired bool) {
	if expired {
		m.e.orderExpired.Add(1)
	}
	// Never while a record is held: one is held only outside a group.
	m.groupLeft = 0
	m.timer.Stop()
	if m.stashed {
		rec := m.stash
		m.stash, m.stashed = record.Record{}, false
		m.out <- rec
	}
}

// tick handles the timer: a wait that ran out ends.
func (m *merge) tick(now time.Time) {
	switch {
	case m.holding:
		left := min(m.progress.Add(orderIdle).Sub(now), m.heldAt.Add(orderMax).Sub(now))
		if left > 0 {
			m.timer.Reset(left)
			return
		}
		m.release(true)
	case m.groupLeft > 0:
		if at := m.groupAt.Add(orderMax); now.Before(at) {
			m.timer.Reset(at.Sub(now))
			return
		}
		m.endGroup(true)
	}
}

// ringClosed: no ring record is coming any more, none is waited for.
func (m *merge) ringClosed() {
	if m.holding {
		m.release(false)
	}
}

// agentClosed: no agent record is coming any more.
func (m *merge) agentClosed() {
	if m.groupLeft > 0 {
		m.endGroup(false)
	}
}
