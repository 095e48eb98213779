package findings

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/bindwatch/bindwatch/audit/state"
)

// Reasons of coverage findings: why the audit's view of a host is
// incomplete. The finding schema's reason field documents each.
const (
	ReasonSeqGap              = "seq_gap"
	ReasonSuppressed          = "suppressed"
	ReasonSilent              = "silent"
	ReasonCaptureBlind        = "capture_blind"
	ReasonInventoryIncomplete = "inventory_incomplete"
)

// SilentAfter is how many heartbeat intervals without a record (and
// without a clean stop) make a host silent.
const SilentAfter = 3

// CoverageID is the id of a coverage finding: one per host and reason,
// and per boot (seq_gap) or user (suppressed) where those tell apart what
// resolves separately.
func CoverageID(hostID, reason string, detail ...string) string {
	return digest(append([]string{"coverage", hostID, reason}, detail...)...)
}

// coverage turns what one applied record says about the host's view into
// coverage transitions: opened by a gap, a user's suppressed records, a
// blind spot or an incomplete inventory; resolved when the view is whole
// again. Whatever was lost, a complete inventory that began after it shows
// the host as it is, so that is what resolves losses.
func (t *Tracker) coverage(h *state.Host, res state.Result, ev *state.Event, out []Finding) []Finding {
	// Most records find their host with no coverage finding open: no
	// digest is computed for them (CoverageID hashes).
	open := func(reason string, detail ...string) *Finding {
		if len(t.coverageOf[h.HostID]) == 0 {
			return nil
		}
		return t.open[CoverageID(h.HostID, reason, detail...)]
	}
	// Any record ends a silence.
	if f := open(ReasonSilent); f != nil {
		out = t.resolve(f, ev, fmt.Sprintf("records arrive again (seq %d)", ev.Seq), out)
	}
	if res.NewBoot {
		// What was lost of the old boot no longer says anything of the new.
		for _, f := range t.hostCoverage(h.HostID) {
			if f.BootID != ev.BootID && (f.Reason == ReasonSeqGap || f.Reason == ReasonSuppressed || f.Reason == ReasonInventoryIncomplete) {
				out = t.resolve(f, ev, "the host booted again", out)
			}
		}
	}
	gap := res.Gap
	if gap != nil && ev.Kind == state.KindSnapshot && h.SnapshotStart == ev.Seq {
		// The inventory's records reach the stream beside the ring's and
		// may overtake records numbered before the walk; those are skipped,
		// but the snapshot shows the host as the walk found it, after
		// them. The gap is raised only if the snapshot does not sweep.
		t.beforeSnapshot[h.HostID] = *gap
		gap = nil
	}
	if ev.Kind == state.KindSnapshotEnd {
		if g, ok := t.beforeSnapshot[h.HostID]; ok {
			delete(t.beforeSnapshot, h.HostID)
			if !res.Swept && gap == nil {
				gap = &g
			}
		}
	}
	if g := gap; g != nil {
		f := newCoverage(h, ReasonSeqGap, ev, ev.BootID)
		from, to := g.From, g.To
		if prev := open(ReasonSeqGap, ev.BootID); prev != nil {
			f.FirstSeen, from = prev.FirstSeen, *prev.MissingFrom
		}
		f.MissingFrom, f.MissingTo, f.AwaitingInventory = &from, &to, true
		f.Detail = fmt.Sprintf("records of boot %s between seq %d and %d never reached the audit (the last run: %d–%d, %d records): "+
			"listeners they opened or closed are unknown until the host's next complete inventory", ev.BootID, from, to, g.From, g.To, g.To-g.From+1)
		out = t.transition(f, ev, out)
	}
	switch ev.Kind {
	case state.KindSuppressed:
		out = t.suppressed(h, ev, out)
	case state.KindHeartbeat:
		prev := open(ReasonCaptureBlind)
		blind := strings.Join(ev.CaptureBlind, "; ")
		switch {
		case blind != "" && (prev == nil || prev.Detail != blindDetail(blind)):
			f := newCoverage(h, ReasonCaptureBlind, ev)
			if prev != nil {
				f.FirstSeen = prev.FirstSeen
			}
			f.Detail = blindDetail(blind)
			out = t.transition(f, ev, out)
		case blind == "" && prev != nil:
			out = t.resolve(prev, ev, "the agent reports no blind spot", out)
		}
	case state.KindSnapshotEnd:
		prev := open(ReasonInventoryIncomplete)
		if len(ev.SnapshotIncomplete) > 0 {
			f := newCoverage(h, ReasonInventoryIncomplete, ev)
			if prev != nil {
				f.FirstSeen = prev.FirstSeen
			}
			f.Detail = "the inventory could not walk everything, so listeners it missed are neither shown nor swept: " +
				strings.Join(ev.SnapshotIncomplete, "; ")
			out = t.transition(f, ev, out)
		}
	}
	if res.Swept {
		// The table is the host's truth as of the snapshot's start: losses
		// before it, and an earlier incomplete inventory, no longer hide
		// anything.
		for _, f := range t.hostCoverage(h.HostID) {
			switch {
			case f.Reason == ReasonSeqGap && f.MissingTo != nil && *f.MissingTo < h.SnapshotStart,
				f.Reason == ReasonSuppressed && f.AwaitingInventory && f.Seq < h.SnapshotStart,
				f.Reason == ReasonInventoryIncomplete:
				out = t.resolve(f, ev, fmt.Sprintf("a complete inventory (from seq %d) shows the host as it is", h.SnapshotStart), out)
			}
		}
	}
	return out
}

func blindDetail(blind string) string {
	return "capture cannot see, on this host: " + blind + ". Listeners opened that way are only found by the next inventory"
}

// suppressed handles a suppressed record: a user's records over its budget
// (open, or add to the count), or, with a count of 0, the end of its
// flood (then the next complete inventory resolves it).
func (t *Tracker) suppressed(h *state.Host, ev *state.Event, out []Finding) []Finding {
	uid := strconv.FormatInt(ev.UID, 10)
	prev := t.open[CoverageID(h.HostID, ReasonSuppressed, uid)]
	f := newCoverage(h, ReasonSuppressed, ev, uid)
	f.UID = ev.UID
	n := ev.Suppressed
	if prev != nil {
		f.FirstSeen = prev.FirstSeen
		n += *prev.Suppressed
	}
	switch {
	case ev.Suppressed > 0:
		f.Detail = fmt.Sprintf("user %d went over its budget (capture.uid_budget): the kernel dropped %d of its records since %s; "+
			"its listeners are still reported, its binds are not", ev.UID, n, f.FirstSeen.Format(time.RFC3339))
	case prev != nil && !prev.AwaitingInventory:
		f.AwaitingInventory = true
		f.Detail = fmt.Sprintf("user %d's flood is over (%d records dropped since %s); the next complete inventory resolves this",
			ev.UID, n, f.FirstSeen.Format(time.RFC3339))
	default:
		return out
	}
	f.Suppressed = &n
	return t.transition(f, ev, out)
}

// newCoverage is an open coverage finding of h for the record ev.
func newCoverage(h *state.Host, reason string, ev *state.Event, detail ...string) Finding {
	return Finding{
		ID: CoverageID(h.HostID, reason, detail...), Kind: KindCoverage, State: Open, Reason: reason,
		Host: h.Host, HostID: h.HostID, BootID: ev.BootID, FirstSeen: ev.Time,
	}
}

// resolve appends f's resolution, saying why after its detail (a listener
// finding has none).
func (t *Tracker) resolve(f *Finding, ev *state.Event, why string, out []Finding) []Finding {
	g := *f
	g.State = Resolved
	if g.Detail == "" {
		g.Detail = "Resolved: " + why
	} else {
		g.Detail += ". Resolved: " + why
	}
	return t.transition(g, ev, out)
}

// hostCoverage lists the open coverage findings of a host, in id order.
func (t *Tracker) hostCoverage(hostID string) []*Finding {
	var fs []*Finding
	for id := range t.coverageOf[hostID] {
		if f := t.open[id]; f != nil {
			fs = append(fs, f)
		}
	}
	slices.SortFunc(fs, func(a, b *Finding) int { return strings.Compare(a.ID, b.ID) })
	return fs
}

// noteCoverage keeps the index of open coverage findings by host.
func (t *Tracker) noteCoverage(f *Finding) {
	if f.Kind != KindCoverage {
		return
	}
	ids := t.coverageOf[f.HostID]
	if f.State == Open {
		if ids == nil {
			ids = map[string]bool{}
			t.coverageOf[f.HostID] = ids
		}
		ids[f.ID] = true
		return
	}
	delete(ids, f.ID)
	if len(ids) == 0 {
		delete(t.coverageOf, f.HostID)
	}
}

// Silent opens a finding for each host that sends heartbeats, did not stop
// cleanly, and sent nothing for SilentAfter intervals before now. The
// caller calls it only once caught up with the events topic, so that a
// backlog is not taken for silence.
func (t *Tracker) Silent(tb *state.Table, now time.Time) []Finding {
	var out []Finding
	ids := make([]string, 0, len(tb.Hosts))
	for id, h := range tb.Hosts {
		if h.HeartbeatInterval > 0 && !h.Stopped && !h.LastSeen.IsZero() && now.Sub(h.LastSeen) > SilentAfter*h.HeartbeatInterval {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	for _, id := range ids {
		h := tb.Hosts[id]
		if t.open[CoverageID(h.HostID, ReasonSilent)] != nil {
			continue
		}
		ev := &state.Event{HostID: h.HostID, BootID: h.BootID, Seq: h.LastSeq, Time: now}
		f := newCoverage(h, ReasonSilent, ev)
		f.FirstSeen = h.LastSeen
		f.Detail = fmt.Sprintf("no record from this host since %s (it sends a heartbeat every %s and did not stop cleanly): "+
			"the agent, the host or its path to Kafka is down, and anything it did meanwhile is unknown",
			h.LastSeen.Format(time.RFC3339), h.HeartbeatInterval)
		out = t.transition(f, ev, out)
	}
	return out
}
