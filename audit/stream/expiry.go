package stream

import (
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/bindwatch/bindwatch/audit/findings"
	"github.com/bindwatch/bindwatch/audit/record"
	"github.com/bindwatch/bindwatch/audit/state"
)

// expiryCheckInterval spaces the walks over every host that look for
// expired ones (O(hosts): 20 to 110 ms at 250 000 hosts on a loaded
// machine): a minute late on a week does not matter. Never more than a
// quarter of the expiry itself, for the short ones of tests.
func expiryCheckInterval(after time.Duration) time.Duration { return min(time.Minute, after/4) }

// expire takes out the hosts that sent nothing for audit.host_expiry:
// a tombstone for each of their listeners and for their host record, every
// open finding of theirs resolved, and the verifier forgets their key
// (trust on first use pins a key anew if the host id sends again: with
// audit.host_keys the configured key stays the only one). Called where
// silence is judged: only once the partition is caught up, against the
// wall clock, so a backlog is not taken for hosts gone.
func (pc *partition) expire(now time.Time, out []findings.Finding, stateMsgs []kafka.Message, dirtyHosts map[string]*state.Host) ([]findings.Finding, []kafka.Message) {
	after := pc.p.cfg.HostExpiry
	if now.Sub(pc.expiryChecked) < expiryCheckInterval(after) {
		return pc.hostCapOver(now, out), stateMsgs
	}
	pc.expiryChecked = now
	gone := pc.table.Expire(now, after)
	if len(gone) == 0 {
		// Under the cap after a rebuild, perhaps: a host_cap finding
		// restored open is resolved.
		return pc.hostCapOver(now, out), stateMsgs
	}
	first := len(out)
	out = pc.tracker.Expire(gone, now, after, out)
	resolved := map[string]int{}
	for _, f := range out[first:] {
		resolved[f.HostID]++
	}
	for _, h := range gone {
		delete(dirtyHosts, h.HostID)
		pc.verifier.Forget(h.HostID)
		ls := h.Sorted()
		for _, l := range ls {
			stateMsgs = append(stateMsgs, kafka.Message{Topic: pc.p.cfg.StateTopic, Partition: pc.id, Key: []byte(record.ListenerKey(h.HostID, l.Key))})
		}
		stateMsgs = append(stateMsgs, kafka.Message{Topic: pc.p.cfg.StateTopic, Partition: pc.id, Key: []byte(record.HostKey(h.HostID))})
		pc.p.Metrics.expired.Inc()
		pc.p.log.Info("host expired", "partition", pc.id, "host_id", h.HostID, "host", h.Host, "last_seen", h.LastSeen.UTC().Format(time.RFC3339),
			"stopped", h.Stopped, "host_expiry", after, "listeners", len(ls), "findings_resolved", resolved[h.HostID])
	}
	// Room again for hosts the cap refused.
	return pc.hostCapOver(now, out), stateMsgs
}
