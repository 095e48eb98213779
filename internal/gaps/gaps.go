// Package gaps finds missing events in a topic. Each event's identity is
// (host id, boot id, seq): the kernel numbers events per boot after its
// filters, so within one (host id, boot id) every number from the first to
// the last must appear, and a missing one is an event lost between the
// kernel and Kafka (or still on its way from a spool).
package gaps

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// RestartJump is the smallest jump in seq read as the counter restarting
// rather than as lost events. A fresh counter (the agent started without its
// pinned state, e.g. after `bindwatch unpin`) starts at the boot clock in
// nanoseconds, so it lands far above any number the old counter reached.
const RestartJump = 1_000_000_000

// Stream is one host's events of one boot.
type Stream struct{ HostID, BootID string }

// Range is a run of missing sequence numbers, First to Last inclusive.
type Range struct{ First, Last uint64 }

// Report is what one stream's sequence numbers show.
type Report struct {
	Stream
	Host        string // host name as the events carry it
	Events      int    // distinct sequence numbers seen
	Duplicates  int    // events seen more than once (at-least-once delivery)
	First, Last uint64
	Missing     []Range
	// Restarts are the jumps at which the counter started again.
	Restarts []Range
}

// MissingCount is how many events the Missing ranges hold.
func (r Report) MissingCount() uint64 {
	var n uint64
	for _, m := range r.Missing {
		n += m.Last - m.First + 1
	}
	return n
}

// Tracker collects sequence numbers per stream.
type Tracker struct {
	seqs  map[Stream][]uint64
	hosts map[Stream]string
}

// NewTracker returns an empty Tracker.
func NewTracker() *Tracker {
	return &Tracker{seqs: map[Stream][]uint64{}, hosts: map[Stream]string{}}
}

// Add records one event.
func (t *Tracker) Add(host, hostID, bootID string, seq uint64) {
	s := Stream{hostID, bootID}
	t.seqs[s] = append(t.seqs[s], seq)
	t.hosts[s] = host
}

// Reports analyses every stream, in host id then boot id order.
func (t *Tracker) Reports() []Report {
	out := make([]Report, 0, len(t.seqs))
	for s, seqs := range t.seqs {
		out = append(out, analyse(s, t.hosts[s], seqs))
	}
	slices.SortFunc(out, func(a, b Report) int {
		return cmp.Or(cmp.Compare(a.HostID, b.HostID), cmp.Compare(a.BootID, b.BootID))
	})
	return out
}

func analyse(s Stream, host string, seqs []uint64) Report {
	slices.Sort(seqs)
	r := Report{Stream: s, Host: host, First: seqs[0], Last: seqs[len(seqs)-1]}
	prev := seqs[0]
	r.Events = 1
	for _, q := range seqs[1:] {
		switch {
		case q == prev:
			r.Duplicates++
			continue
		case q-prev >= RestartJump:
			r.Restarts = append(r.Restarts, Range{prev, q})
		case q-prev > 1:
			r.Missing = append(r.Missing, Range{prev + 1, q - 1})
		}
		r.Events++
		prev = q
	}
	return r
}

// String is one line: the stream, its counts and what is missing.
func (r Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "host %s host_id %s boot_id %s: %d events, seq %d..%d", r.Host, r.HostID, r.BootID, r.Events, r.First, r.Last)
	if r.Duplicates > 0 {
		fmt.Fprintf(&b, ", %d duplicates", r.Duplicates)
	}
	for _, j := range r.Restarts {
		fmt.Fprintf(&b, ", counter restarted after %d at %d", j.First, j.Last)
	}
	if len(r.Missing) == 0 {
		b.WriteString(", none missing")
		return b.String()
	}
	fmt.Fprintf(&b, ", %d missing:", r.MissingCount())
	for i, m := range r.Missing {
		if i > 0 {
			b.WriteByte(',')
		}
		if m.First == m.Last {
			fmt.Fprintf(&b, " %d", m.First)
		} else {
			fmt.Fprintf(&b, " %d-%d", m.First, m.Last)
		}
	}
	return b.String()
}
