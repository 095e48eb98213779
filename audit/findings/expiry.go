package findings

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/bindwatch/bindwatch/audit/state"
)

// ExpiredWhy is the sentence a finding of an expired host is resolved
// with: when its last record was applied, and the setting that expired it.
func ExpiredWhy(h *state.Host, after time.Duration) string {
	return fmt.Sprintf("host expired: no record since %s (audit.host_expiry %s)", h.LastSeen.UTC().Format(time.RFC3339), after)
}

// Expire resolves every open finding of the hosts the table expired
// (state.Table.Expire: listener, require, coverage and integrity alike),
// each saying why (ExpiredWhy), and forgets what the tracker kept of
// them: a host that sends again starts fresh. at stamps the transitions,
// which carry each host's boot and last seq. One walk over the open
// findings, whatever the number of hosts.
func (t *Tracker) Expire(hosts []*state.Host, at time.Time, after time.Duration, out []Finding) []Finding {
	if len(hosts) == 0 {
		return out
	}
	byID := make(map[string]*state.Host, len(hosts))
	for _, h := range hosts {
		byID[h.HostID] = h
	}
	var fs []*Finding
	for _, f := range t.open {
		if byID[f.HostID] != nil {
			fs = append(fs, f)
		}
	}
	slices.SortFunc(fs, func(a, b *Finding) int {
		if c := strings.Compare(a.HostID, b.HostID); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	for _, f := range fs {
		h := byID[f.HostID]
		out = t.resolve(f, &state.Event{HostID: h.HostID, BootID: h.BootID, Seq: h.LastSeq, Time: at}, ExpiredWhy(h, after), out)
	}
	for _, h := range hosts {
		for _, l := range h.Listeners {
			t.count(h, l, -1)
		}
		delete(t.wants, h.HostID)
		delete(t.emitted, h.HostID)
		delete(t.coverageOf, h.HostID)
		delete(t.beforeSnapshot, h.HostID)
	}
	return out
}
