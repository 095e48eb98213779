package bpf

// What the kernel side could not deliver: the ring's and the budgets'
// drop counters, by reason and kind, and what each user's budget
// suppressed.

import (
	"fmt"
)

// Drops counts records the kernel side could not deliver.
type Drops struct {
	// RingBufferFull counts records lost because the ring buffer had no room.
	RingBufferFull uint64
	// PendingFull counts calls whose entry could not be stashed for the return.
	PendingFull uint64
	// NoSocket counts binds and listens that succeeded on an fd whose
	// socket the program could not find: calls that could not be reported.
	NoSocket uint64
	// Orphaned counts calls skipped because the lease had run out: no
	// agent renewed it in time.
	Orphaned uint64
	// Budget counts records of users over their budget.
	Budget uint64
	// RingReserved counts binds refused because the ring was filled up to
	// the part kept for listen and close records (ListenerReserve).
	RingReserved uint64
	// ByKind splits the ring's and the budgets' drops by record kind.
	ByKind KindDrops
}

// KindDrops are per-kind drop counters, by reason then record kind; see
// Each.
type KindDrops [len(kindDropReasons)][bindwatchKindDropReasonKIND_SLOTS]uint64

// Each calls f with every reason ("ring_buffer_full", "ring_reserved",
// "budget"), every ring kind, and its count.
func (k KindDrops) Each(f func(reason string, kind Kind, n uint64)) {
	for r, name := range kindDropReasons {
		for _, kind := range []Kind{KindBind, KindListen, KindClose} {
			f(name, kind, k[r][kind])
		}
	}
}

// BudgetListeners is how many listen and close records users' budgets
// suppressed: what says a listener flood goes on, in two counters the
// kernel keeps, not a walk of every user's budget.
func (k KindDrops) BudgetListeners() uint64 {
	b := k[bindwatchKindDropReasonKIND_DROP_BUDGET]
	return b[KindListen] + b[KindClose]
}

// kindDropReasons name enum kind_drop_reason's values.
var kindDropReasons = [...]string{
	bindwatchKindDropReasonKIND_DROP_RING_FULL: "ring_buffer_full",
	bindwatchKindDropReasonKIND_DROP_RESERVED:  "ring_reserved",
	bindwatchKindDropReasonKIND_DROP_BUDGET:    "budget",
}

// Minus is d less an earlier reading b: what was dropped between them.
func (d Drops) Minus(b Drops) Drops {
	return Drops{
		RingBufferFull: d.RingBufferFull - b.RingBufferFull,
		PendingFull:    d.PendingFull - b.PendingFull,
		NoSocket:       d.NoSocket - b.NoSocket,
		Orphaned:       d.Orphaned - b.Orphaned,
		Budget:         d.Budget - b.Budget,
		RingReserved:   d.RingReserved - b.RingReserved,
		ByKind:         minusKinds(d.ByKind, b.ByKind),
	}
}

func minusKinds(d, b KindDrops) KindDrops {
	for r := range d {
		for k := range d[r] {
			d[r][k] -= b[r][k]
		}
	}
	return d
}

// Drops sums the per-CPU drop counters.
func (p *Probe) Drops() (Drops, error) {
	var d Drops
	m := p.coll.Maps["drops"]
	for reason, dst := range []*uint64{&d.RingBufferFull, &d.PendingFull, &d.NoSocket, &d.Orphaned, &d.Budget} {
		var perCPU []uint64
		if err := m.Lookup(uint32(reason), &perCPU); err != nil {
			return d, fmt.Errorf("reading drop counter %d: %w", reason, err)
		}
		for _, n := range perCPU {
			*dst += n
		}
	}
	km := p.coll.Maps["kind_drops"]
	for reason := range kindDropReasons {
		for _, kind := range []Kind{KindBind, KindListen, KindClose} {
			slot := uint32(reason)*uint32(bindwatchKindDropReasonKIND_SLOTS) + uint32(kind)
			var perCPU []uint64
			if err := km.Lookup(slot, &perCPU); err != nil {
				return d, fmt.Errorf("reading kind drop counter %d: %w", slot, err)
			}
			var n uint64
			for _, v := range perCPU {
				n += v
			}
			d.ByKind[reason][kind] = n
			if reason == int(bindwatchKindDropReasonKIND_DROP_RESERVED) {
				d.RingReserved += n
			}
		}
	}
	return d, nil
}

// Suppression is what a user's budgets dropped: its bind records, and its
// listen and close records, which have a budget of their own.
type Suppression struct {
	Binds, Listeners uint64
}

// Total is every record the user's budgets dropped.
func (s Suppression) Total() uint64 { return s.Binds + s.Listeners }

// Suppressed is, per user, how many records its budgets dropped since the
// budget maps were made (all CPUs summed).
func (p *Probe) Suppressed() (map[uint32]Suppression, error) {
	out := map[uint32]Suppression{}
	for _, m := range []struct {
		name string
		add  func(s *Suppression, n uint64)
	}{
		{"uid_budgets", func(s *Suppression, n uint64) { s.Binds += n }},
		{"listener_budgets", func(s *Suppression, n uint64) { s.Listeners += n }},
	} {
		var uid uint32
		var perCPU []bindwatchUidBudget
		it := p.coll.Maps[m.name].Iterate()
		for it.Next(&uid, &perCPU) {
			s := out[uid]
			for _, b := range perCPU {
				m.add(&s, b.Suppressed)
			}
			out[uid] = s
		}
		if err := it.Err(); err != nil {
			return nil, fmt.Errorf("reading the user budgets (%s): %w", m.name, err)
		}
	}
	return out, nil
}
