package capture

import "sync"

// Checkpoints tie the events handed to the next stage to ring positions, so
// that ring space is given back only for events that are safe (in Kafka or
// the spool). Events pass the stages in order, so "the first n events are
// safe" names one position: the ring position after the n-th.
type Checkpoints struct {
	mu     sync.Mutex
	marks  []mark // ascending; marks[head:] are live
	head   int
	handed uint64
}

type mark struct{ count, pos uint64 }

// handedOn records that one more event went downstream, and where the ring
// stands after it.
func (c *Checkpoints) handedOn(pos uint64) {
	c.mu.Lock()
	c.handed++
	c.marks = append(c.marks, mark{c.handed, pos})
	c.mu.Unlock()
}

// Safe says the first n events handed on are delivered or accounted for, and
// returns the ring position that frees their space; ok is false when there is
// nothing new to free.
func (c *Checkpoints) Safe(n uint64) (pos uint64, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.head < len(c.marks) && c.marks[c.head].count <= n {
		pos, ok = c.marks[c.head].pos, true
		c.head++
	}
	// Reuse the array once the consumed prefix dominates it.
	if c.head > 1024 && c.head*2 > len(c.marks) {
		c.marks = append(c.marks[:0], c.marks[c.head:]...)
		c.head = 0
	}
	return pos, ok
}

// InFlight is how many handed-on events are not yet safe.
func (c *Checkpoints) InFlight() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.marks) - c.head
}
