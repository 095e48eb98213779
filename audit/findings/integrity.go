package findings

import (
	"slices"
	"time"

	"github.com/bindwatch/bindwatch/audit/state"
)

// IntegrityID is the id of an integrity finding: one per host and reason.
func IntegrityID(hostID, reason string) string { return digest("integrity", hostID, reason) }

// Integrity opens the integrity finding of a host for reason, unless it is
// open already: the first record refused says what happened, and the
// metrics count the rest. at is the Kafka time of the record, never the
// time it claims (a forged record may claim any).
func (t *Tracker) Integrity(hostID, host, bootID, reason, detail string, seq int64, at time.Time, out []Finding) []Finding {
	id := IntegrityID(hostID, reason)
	if t.open[id] != nil {
		return out
	}
	f := Finding{ID: id, Kind: KindIntegrity, State: Open, Reason: reason, Host: host, HostID: hostID, FirstSeen: at, Detail: detail}
	return t.transition(f, &state.Event{HostID: hostID, BootID: bootID, Seq: seq, Time: at}, out)
}

// ResolveIntegrity resolves a host's open integrity finding for reason,
// saying why.
func (t *Tracker) ResolveIntegrity(hostID, reason, why string, ev *state.Event, out []Finding) []Finding {
	if f := t.open[IntegrityID(hostID, reason)]; f != nil {
		return t.resolve(f, ev, why, out)
	}
	return out
}

// ResolveOpen resolves the open finding id, saying why, as of at (with
// the boot and seq it was opened with); nothing if it is not open.
func (t *Tracker) ResolveOpen(id, why string, at time.Time, out []Finding) []Finding {
	if f := t.open[id]; f != nil {
		return t.resolve(f, &state.Event{HostID: f.HostID, BootID: f.BootID, Seq: f.Seq, Time: at}, why, out)
	}
	return out
}

// OpenOf lists the ids of the open findings of kind and reason, sorted.
// It walks every open finding: for what is rare (a partition at its cap).
func (t *Tracker) OpenOf(kind, reason string) []string {
	var ids []string
	for id, f := range t.open {
		if f.Kind == kind && f.Reason == reason {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}
