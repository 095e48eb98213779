package stream

// Applying one verified record: the identity checks that need no key
// (partition, seq jumps, clocks, sizes), the table and the tracker, and
// what cannot be written set aside.

import (
	"fmt"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/bindwatch/bindwatch/audit/findings"
	"github.com/bindwatch/bindwatch/audit/integrity"
	"github.com/bindwatch/bindwatch/audit/record"
	"github.com/bindwatch/bindwatch/audit/state"
)

// MaxSeqJump is the most a host's seq may move forward from one record to
// the next of the same boot: 2^32 records lost is over half an hour of the
// fastest failing binds the kernel makes here (1.8 M/s) with nothing
// delivered. A larger jump would make every later record look like a
// duplicate; it is refused.
const MaxSeqJump = 1 << 32

// MaxClockAhead is how far after its Kafka timestamp the first record of
// a new boot may claim to be: a record is stamped before Kafka takes it
// (later when it waited in the spool), so a first record from the future
// is a clock far off or a forged boot, which would hide the host's real
// records until it reboots. It is refused.
const MaxClockAhead = 10 * time.Minute

// apply applies one verified record to the table and the tracker.
func (pc *partition) apply(r *integrity.Record, now time.Time, caughtUp bool, out []findings.Finding, stateMsgs []kafka.Message, dirtyHosts map[string]*state.Host) ([]findings.Finding, []kafka.Message, error) {
	p := pc.p
	ev := &r.Event
	switch ev.Kind {
	case state.KindSeal, state.KindHostKey, state.KindKeyRotation:
		pc.table.Note(ev)
		p.Metrics.verified.Inc()
		return out, stateMsgs, nil
	}
	if h := pc.table.Hosts[ev.HostID]; h != nil {
		problem := func(reason, detail string, args ...any) integrity.Problem {
			return integrity.Problem{HostID: ev.HostID, Host: ev.Host, BootID: ev.BootID, Seq: ev.Seq, Time: r.At, Reason: reason, Detail: fmt.Sprintf(detail, args...)}
		}
		switch {
		case h.BootID == ev.BootID && h.LastSeq >= 0 && ev.Seq-h.LastSeq > MaxSeqJump:
			return pc.refuse(out, problem(integrity.ReasonSeqJump, "a record of host %s (boot %s) with seq %d, %d past its last %d (the bound is %d): refused",
				ev.HostID, ev.BootID, ev.Seq, ev.Seq-h.LastSeq, h.LastSeq, int64(MaxSeqJump))), stateMsgs, nil
		case h.BootID != ev.BootID && !r.At.IsZero() && ev.Time.Sub(r.At) > MaxClockAhead:
			return pc.refuse(out, problem(integrity.ReasonBootTime, "the first record of a new boot %s of host %s claims %s, %s after Kafka took it (offset %d; the bound is %s): refused",
				ev.BootID, ev.HostID, ev.Time.Format(time.RFC3339), ev.Time.Sub(r.At).Round(time.Second), r.Offset, MaxClockAhead)), stateMsgs, nil
		}
	}
	if cut := state.Cap(ev); cut != nil {
		out = pc.refuse(out, integrity.Problem{HostID: ev.HostID, Host: ev.Host, BootID: ev.BootID, Seq: ev.Seq, Time: r.At, Reason: integrity.ReasonCut,
			Detail: fmt.Sprintf("a record of the host (seq %d) had fields longer than the audit keeps: %s, cut", ev.Seq, strings.Join(cut, ", "))})
	}
	res := pc.table.Apply(ev)
	switch res.OverCap {
	case "hosts":
		out = pc.hostCap(out, integrity.Problem{HostID: ev.HostID, Host: ev.Host, BootID: ev.BootID, Seq: ev.Seq, Time: r.At})
		return out, stateMsgs, nil
	case "listeners":
		out = pc.refuse(out, integrity.Problem{HostID: ev.HostID, Host: ev.Host, BootID: ev.BootID, Seq: ev.Seq, Time: r.At, Reason: integrity.ReasonListenerCap,
			Detail: fmt.Sprintf("the host already has %d listeners (the cap): the listener of its record seq %d was not added, and others after it may be missing", pc.table.MaxListenersPerHost(), ev.Seq)})
	}
	if res.Skipped {
		p.Metrics.duplicate.Inc()
		return out, stateMsgs, nil
	}
	p.Metrics.applied.Inc()
	h := pc.table.Hosts[ev.HostID]
	dirtyHosts[h.HostID] = h
	h.LastSeen = seenAt(r.At, now, caughtUp)
	fs, replayed := pc.tracker.Apply(h, res, ev)
	if !replayed {
		out = append(out, fs...)
	}
	var from *origin
	for _, ch := range res.Changes {
		if from == nil {
			from = &origin{hostID: ev.HostID, host: ev.Host, bootID: ev.BootID, seq: ev.Seq, at: r.At}
		}
		msg := kafka.Message{Topic: p.cfg.StateTopic, Partition: pc.id, Key: []byte(record.ListenerKey(ch.L.HostID, ch.L.Key)), WriterData: from}
		if ch.Op != state.Removed {
			var err error
			if msg.Value, err = p.codec.EncodeListener(ch.L); err != nil {
				return out, stateMsgs, err
			}
		}
		if !fits(&msg) {
			out = pc.tooLarge(out, ev, p.cfg.StateTopic, &msg)
			continue
		}
		stateMsgs = append(stateMsgs, msg)
	}
	return out, stateMsgs, nil
}

// MaxHostIDBytes is the longest host_id the audit takes: a machine-id is
// 32 hex digits; anything much longer is a payload, which would make every
// state and finding record of the host too large to write.
const MaxHostIDBytes = 255

// maxOutputBytes is the largest state or finding message the audit
// writes: the writer's BatchBytes, less room for the record framing.
const maxOutputBytes = 1000000 - 1024

// fits says whether the writer can take msg: kafka-go fails a whole write
// for one message over BatchBytes, and the partition would retry it for
// ever.
func fits(msg *kafka.Message) bool { return len(msg.Key)+len(msg.Value) <= maxOutputBytes }

// tooLarge sets aside an output message that cannot be written, counts it
// and reports it as an integrity finding of the host whose record made it.
func (pc *partition) tooLarge(out []findings.Finding, ev *state.Event, topic string, msg *kafka.Message) []findings.Finding {
	pc.p.Metrics.setAside.WithLabelValues(topic, integrity.ReasonTooLarge).Inc()
	return pc.refuse(out, integrity.Problem{HostID: ev.HostID, Host: ev.Host, BootID: ev.BootID, Seq: ev.Seq, Time: ev.Time,
		Reason: integrity.ReasonTooLarge, Detail: fmt.Sprintf("a record of the host (seq %d) made a %s message of %d bytes, over the %d the audit writes: set aside, the partition goes on without it",
			ev.Seq, topic, len(msg.Key)+len(msg.Value), maxOutputBytes)})
}

// refuse counts a refused record and opens its host's integrity finding.
func (pc *partition) refuse(out []findings.Finding, pr integrity.Problem) []findings.Finding {
	pc.p.Metrics.refused.WithLabelValues(pr.Reason).Inc()
	switch pr.Reason {
	case integrity.ReasonUnsigned, integrity.ReasonTooLarge, integrity.ReasonRefused, integrity.ReasonCut, integrity.ReasonListenerCap: // applied
	default:
		pc.p.Metrics.events.WithLabelValues("refused").Inc()
	}
	host := pr.Host
	// The finding must be small enough to write whatever the record held.
	pr.HostID, host, pr.BootID = clip(pr.HostID), clip(host), clip(pr.BootID)
	if h := pc.table.Hosts[pr.HostID]; h != nil {
		host = h.Host // the name the host gave itself, not the one a forger claims
	}
	n := len(out)
	out = pc.tracker.Integrity(pr.HostID, host, pr.BootID, pr.Reason, pr.Detail, pr.Seq, pr.Time, out)
	if len(out) > n { // opened now: logged once, as the finding is
		pc.p.log.Warn("integrity: "+pr.Detail, "partition", pc.id, "host_id", pr.HostID, "reason", pr.Reason)
	}
	return out
}

// partitionOf is the partition the agent's producer (kafka-go's murmur2
// balancer, as Java's default partitioner) puts key on, of n; -1 when n is
// unknown.
func partitionOf(key []byte, n int) int {
	if n <= 0 {
		return -1
	}
	parts := partitionNumbers[:min(n, len(partitionNumbers))]
	if n > len(partitionNumbers) {
		parts = make([]int, n)
		for i := range parts {
			parts[i] = i
		}
	}
	return murmur2.Balance(kafka.Message{Key: key}, parts...)
}

// partitionNumbers are 0, 1, 2, ...: the partitions of a topic, shared and read
// only, so that asking a record's partition (every record) allocates no
// list; the balancer keeps no state.
var (
	partitionNumbers = func() []int {
		ids := make([]int, 1024)
		for i := range ids {
			ids[i] = i
		}
		return ids
	}()
	murmur2 kafka.Murmur2Balancer
)

// clip cuts a string a record brought to what a finding may carry.
func clip(s string) string {
	if len(s) <= MaxHostIDBytes {
		return s
	}
	return strings.ToValidUTF8(s[:64], "?") + fmt.Sprintf("…(%d bytes)", len(s))
}

// safeKey is a Kafka key fit for a finding's detail.
func safeKey(k []byte) string {
	if len(k) > 128 {
		k = k[:128]
	}
	return strings.ToValidUTF8(string(k), "?")
}
