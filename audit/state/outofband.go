package state

// Seqs outside a host's listener timeline (seals, host keys, heartbeats,
// stops, suppressed records) are kept aside, so that records numbered
// before them that arrive after them are applied, not skipped.

import (
	"slices"
)

// maxSpare bounds the seqs a host keeps aside: a seal per batch, and a
// batch's worth of records in flight at most.
const maxSpare = 64

// Note takes the seq of a record of ev's host that is not part of its
// listener timeline (a seal, a host key), so that the seq is neither
// counted as lost nor a reason to skip records with lower seqs that arrive
// after it (a seal's seq is taken after its batch's, while the next batch
// may hold records numbered before it).
func (t *Table) Note(ev *Event) {
	h := t.Hosts[ev.HostID]
	if h == nil || h.BootID != ev.BootID {
		if t.early == nil {
			t.early = map[string]earlySeqs{}
		}
		e := t.early[ev.HostID]
		if e.bootID != ev.BootID {
			if len(t.early) >= maxSpare*16 {
				clear(t.early) // only a flood of hosts that never send a record
			}
			e = earlySeqs{bootID: ev.BootID}
		}
		if len(e.seqs) < maxSpare {
			e.seqs = append(e.seqs, ev.Seq)
		}
		t.early[ev.HostID] = e
		return
	}
	if ev.Seq <= h.LastSeq || slices.Contains(h.spare, ev.Seq) {
		return
	}
	h.noteSpare(ev.Seq)
}

// noteSpare keeps seq aside until the seqs before it arrive.
func (h *Host) noteSpare(seq int64) {
	if len(h.spare) >= maxSpare {
		h.spare = h.spare[1:]
	}
	h.spare = append(h.spare, seq)
	h.takeSpare()
}

// outOfBand says whether a kind is one of the agent's own records that
// changes no listener and may overtake the ring's records.
func outOfBand(kind string) bool {
	return kind == KindHeartbeat || kind == KindStop || kind == KindSuppressed
}

// liveness takes what ev says of the host's agent being there: a
// heartbeat's interval, a clean stop; any later record ends the stop.
func (h *Host) liveness(ev *Event) {
	switch ev.Kind {
	case KindHeartbeat:
		h.HeartbeatInterval = ev.HeartbeatInterval
	case KindStop:
		if ev.HeartbeatInterval > 0 {
			h.HeartbeatInterval = ev.HeartbeatInterval
		}
		h.Stopped, h.stopSeq = true, ev.Seq
		return
	}
	if ev.Seq > h.stopSeq {
		h.Stopped = false
	}
}

// takeSpare moves LastSeq over the spare seqs that follow it and forgets
// those below it.
func (h *Host) takeSpare() {
	for len(h.spare) > 0 {
		i := slices.Index(h.spare, h.LastSeq+1)
		if i < 0 {
			break
		}
		h.LastSeq++
		h.spare = slices.Delete(h.spare, i, i+1)
	}
	h.spare = slices.DeleteFunc(h.spare, func(s int64) bool { return s <= h.LastSeq })
}
