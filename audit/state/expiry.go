package state

import (
	"cmp"
	"slices"
	"strings"
	"time"
)

// Expire takes out of the table every host no record of which was applied
// for longer than after (audit.host_expiry): a host decommissioned, or
// stopped for good. A clean stop does not keep a host: it expires as a
// silent one does, after the same time. The hosts come back with their
// listeners, in host id order, for the caller to write their tombstones
// and resolve their findings; a host that sends again later starts fresh.
//
// now is the caller's clock and LastSeen what it stamped (the broker's
// time for a backlog, the wall clock once caught up): as for silence, the
// caller asks only once caught up, so a backlog is not taken for a host
// gone. A host with no LastSeen (a state record from before it was kept)
// is timed from now.
func (t *Table) Expire(now time.Time, after time.Duration) []*Host {
	if after <= 0 {
		return nil
	}
	var gone []*Host
	for _, h := range t.Hosts {
		if h.LastSeen.IsZero() {
			h.LastSeen = now
			continue
		}
		if now.Sub(h.LastSeen) > after {
			gone = append(gone, h)
		}
	}
	slices.SortFunc(gone, func(a, b *Host) int { return strings.Compare(a.HostID, b.HostID) })
	for _, h := range gone {
		delete(t.Hosts, h.HostID)
		delete(t.early, h.HostID)
	}
	return gone
}

// Sorted returns h's listeners in key order.
func (h *Host) Sorted() []*Listener {
	ls := make([]*Listener, 0, len(h.Listeners))
	for _, l := range h.Listeners {
		ls = append(ls, l)
	}
	slices.SortFunc(ls, func(a, b *Listener) int {
		if c := cmp.Compare(a.Key.NetNS, b.Key.NetNS); c != 0 {
			return c
		}
		if c := cmp.Compare(a.Key.Cookie, b.Key.Cookie); c != 0 {
			return c
		}
		return strings.Compare(a.Key.Anon, b.Key.Anon)
	})
	return ls
}
