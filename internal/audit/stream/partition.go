package stream

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/bindwatch/bindwatch/internal/audit/findings"
	"github.com/bindwatch/bindwatch/internal/audit/integrity"
	"github.com/bindwatch/bindwatch/internal/audit/record"
	"github.com/bindwatch/bindwatch/internal/audit/state"
	"github.com/bindwatch/bindwatch/schemas/codec"
)

// partition is one assigned partition of one generation.
type partition struct {
	p     *Processor
	gen   *kafka.Generation
	id    int
	label string
	built func() // says the partition's first rebuild is over
	// committed is the offset last committed, -1 before the first commit.
	committed int64

	decoder  *record.EventDecoder
	verifier *integrity.Verifier
	table    *state.Table
	tracker  *findings.Tracker
	polGen   uint64
	// reevaluate is set until the partition first catches up after its
	// rebuild: the policy may have changed while nobody held it.
	reevaluate bool
	evals      uint64
	// silenceChecked is when hosts were last checked for silence.
	silenceChecked time.Time
	// undecodable counts the undecodable messages since the last line
	// logged about one, at undecodableLogged.
	undecodable       int
	undecodableLogged time.Time
	// retryLogged is when a write retry was last logged; asideRun counts,
	// by topic, the messages set aside since one was last written there.
	retryLogged time.Time
	asideRun    map[string]int
	// hostCapOpen are the ids of the partition's open host_cap findings
	// (one, but more may be restored), once hostCapLoaded.
	hostCapOpen   []string
	hostCapLoaded bool
	// expiryChecked is when hosts were last checked for expiry.
	expiryChecked time.Time
}

// silenceCheckInterval spaces the walks over every host that look for
// silent ones: a silence is three heartbeat intervals long, so a second
// more does not matter, and the walk is O(hosts).
const silenceCheckInterval = time.Second

// batchWriteTimeout bounds how long a batch's writes and commit may go on
// after the partition was told to stop.
const batchWriteTimeout = 10 * time.Second

func (pc *partition) run(ctx context.Context, offset int64) error {
	p, c := pc.p, pc.p.cfg
	start := time.Now()
	pc.polGen = p.policyGen.Load()
	pc.table, pc.tracker = state.New(), findings.New(p.policy.Load())
	pc.table.HostCap = p.hostCap
	var err error
	if pc.decoder, err = record.NewEventDecoder(p.decoder); err != nil {
		return err
	}
	// The audit's topics must have this partition before anything reads
	// or writes it there (a reader would wait for it without end).
	if err := p.outputsFor(ctx, pc.id+1); err != nil {
		return fmt.Errorf("partition %d: %w", pc.id, err)
	}
	var st RebuildStats
	st, err = Rebuild(ctx, p.dialer, c.Brokers, c.StateTopic, c.FindingsTopic, pc.id, p.codec, pc.table, pc.tracker)
	if err != nil {
		return fmt.Errorf("rebuilding partition %d: %w", pc.id, err)
	}
	pc.verifier = integrity.New(p.hostKeys)
	for id, h := range pc.table.Hosts {
		if h.PublicKey != nil {
			pc.verifier.Pin(id, h.PublicKey)
		}
	}
	pc.built()
	p.Metrics.rebuilds.Inc()
	p.Metrics.rebuildSecs.Observe(time.Since(start).Seconds())
	p.log.Info("partition rebuilt", "partition", pc.id, "hosts", st.Hosts, "listeners", st.Listeners, "open_findings", st.Open,
		"state_records", st.StateRecords, "finding_records", st.FindingRecords, "took", time.Since(start).Round(time.Millisecond), "from_offset", offset)
	pc.reevaluate = true
	pc.gauges()
	defer func() {
		for _, g := range []interface{ DeleteLabelValues(...string) bool }{p.Metrics.listeners, p.Metrics.lag} {
			g.DeleteLabelValues(pc.label)
		}
		p.Metrics.open.DeletePartialMatch(prometheus.Labels{"partition": pc.label})
	}()

	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers: c.Brokers, Topic: c.EventsTopic, Partition: pc.id, Dialer: p.dialer,
		MinBytes: 1, MaxBytes: 16 << 20, MaxWait: 50 * time.Millisecond,
	})
	defer r.Close()
	if offset < 0 {
		offset = kafka.FirstOffset
	}
	if err := r.SetOffset(offset); err != nil {
		return err
	}
	batch := make([]kafka.Message, 0, c.BatchSize)
	for {
		batch = batch[:0]
		caughtUp := false
		// Wait for one message (or a quiet batch timeout, to notice a
		// policy reload and catching up), then take what comes quickly.
		wait, cancel := context.WithTimeout(ctx, max(c.BatchTimeout, 100*time.Millisecond))
		m, err := r.FetchMessage(wait)
		cancel()
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, context.DeadlineExceeded):
			caughtUp = true
		case err != nil:
			return err
		default:
			batch = append(batch, m)
			deadline, cancel := context.WithTimeout(ctx, c.BatchTimeout)
			for len(batch) < c.BatchSize {
				if m.Offset+1 >= m.HighWaterMark {
					break
				}
				if m, err = r.FetchMessage(deadline); err != nil {
					break
				}
				batch = append(batch, m)
			}
			cancel()
			if ctx.Err() != nil {
				return nil
			}
			last := batch[len(batch)-1]
			p.Metrics.lag.WithLabelValues(pc.label).Set(float64(max(0, last.HighWaterMark-last.Offset-1)))
			caughtUp = last.Offset+1 >= last.HighWaterMark
		}
		if err := pc.process(ctx, batch, caughtUp); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
}

// process applies a batch, publishes its findings then its state, then
// commits: a crash anywhere leaves records a replay skips (state topic) or
// recognises (findings topic), never a finding raised twice.
func (pc *partition) process(ctx context.Context, batch []kafka.Message, caughtUp bool) error {
	p := pc.p
	var out []findings.Finding
	var stateMsgs []kafka.Message
	dirtyHosts := map[string]*state.Host{}

	now := time.Now()
	var ev state.Event
	var o integrity.Outcome
	for _, m := range batch {
		err := pc.decoder.Decode(ctx, m.Value, &ev)
		if errors.Is(err, codec.ErrRegistryUnavailable) {
			// Not bad data: the message is decoded again once the
			// registry answers, and nothing is committed past it.
			if err = pc.awaitRegistry(ctx, m, &ev, err); errors.Is(err, codec.ErrRegistryUnavailable) {
				return fmt.Errorf("offset %d: %w", m.Offset, err) // ctx ended
			}
		}
		if err != nil {
			p.Metrics.events.WithLabelValues("undecodable").Inc()
			// At most one line a second: a flood of bad messages must not
			// flood the logs (the metric counts every one).
			if pc.undecodable++; now.Sub(pc.undecodableLogged) >= time.Second {
				p.log.Warn("undecodable event", "partition", m.Partition, "offset", m.Offset, "err", err, "undecodable_since_last_line", pc.undecodable)
				pc.undecodable, pc.undecodableLogged = 0, now
			}
			continue
		}
		if ev.HostID == "" {
			p.Metrics.events.WithLabelValues("undecodable").Inc()
			continue
		}
		// Identity checks that need no key: a host id is a machine-id, not
		// a payload; a record names its host in its Kafka key, which puts
		// it on its host's partition.
		if len(ev.HostID) > MaxHostIDBytes {
			out = pc.refuse(out, integrity.Problem{HostID: ev.HostID, BootID: ev.BootID, Seq: ev.Seq, Time: m.Time,
				Reason: integrity.ReasonBadHostID, Detail: fmt.Sprintf("a record whose host_id is %d bytes long (at most %d; a machine-id is 32) at partition %d, offset %d: refused", len(ev.HostID), MaxHostIDBytes, m.Partition, m.Offset)})
			continue
		}
		if string(m.Key) != ev.HostID {
			out = pc.refuse(out, integrity.Problem{HostID: ev.HostID, Host: ev.Host, BootID: ev.BootID, Seq: ev.Seq, Time: m.Time,
				Reason: integrity.ReasonWrongKey, Detail: fmt.Sprintf("a record in the name of host %s under the Kafka key %q (partition %d, offset %d): refused", ev.HostID, safeKey(m.Key), m.Partition, m.Offset)})
			continue
		}
		if ok, want := p.onKeyPartition(m.Key, m.Partition); !ok {
			out = pc.refuse(out, integrity.Problem{HostID: ev.HostID, Host: ev.Host, BootID: ev.BootID, Seq: ev.Seq, Time: m.Time,
				Reason: integrity.ReasonWrongPartition, Detail: fmt.Sprintf("a record of host %s on partition %d (offset %d), where its key puts it on %d: refused", ev.HostID, m.Partition, m.Offset, want)})
			continue
		}
		if pc.overHostCap(ev.HostID) {
			out = pc.hostCap(out, integrity.Problem{HostID: ev.HostID, Host: ev.Host, BootID: ev.BootID, Seq: ev.Seq, Time: m.Time})
			continue
		}
		body, _ := codec.Body(m.Value)
		o = integrity.Outcome{Ready: o.Ready[:0], Problems: o.Problems[:0], Pinned: o.Pinned[:0], Sealing: o.Sealing[:0]}
		pc.verifier.Offer(integrity.Record{Event: ev, Digest: sha256.Sum256(body), Offset: m.Offset, At: m.Time}, &o)
		for _, pr := range o.Problems {
			out = pc.refuse(out, pr)
		}
		for _, r := range o.Ready {
			var err error
			if out, stateMsgs, err = pc.apply(r, now, caughtUp, out, stateMsgs, dirtyHosts); err != nil {
				return err
			}
		}
		for _, id := range o.Pinned {
			if h := pc.table.Hosts[id]; h != nil {
				h.PublicKey = pc.verifier.Key(id)
				dirtyHosts[id] = h
			}
		}
		for _, id := range o.Sealing {
			p.log.Info("host seals its records: key pinned", "partition", pc.id, "host_id", id)
			out = pc.tracker.ResolveIntegrity(id, integrity.ReasonUnsigned, "the host seals its records now, and its key is pinned",
				&state.Event{HostID: id, BootID: ev.BootID, Seq: ev.Seq, Time: m.Time}, out)
		}
	}
	// Re-judged after the batch is applied, never before: right after a
	// rebuild the table holds only what the state topic had, and the
	// replayed events still to come may be what keeps a restored finding
	// open. Judged before them, such a finding was resolved, then resolved
	// again by the real close (TestAuditEndToEnd: "open resolved resolved",
	// the first one carrying the host's seq from before the listen).
	if gen := p.policyGen.Load(); gen != pc.polGen || (pc.reevaluate && caughtUp) {
		pc.polGen, pc.reevaluate = gen, false
		out = append(out, pc.tracker.Reevaluate(p.policy.Load(), pc.table, time.Now())...)
	}
	if caughtUp && now.Sub(pc.silenceChecked) >= silenceCheckInterval {
		pc.silenceChecked = now
		// Expired hosts first: one gone for audit.host_expiry is not
		// called silent on its way out.
		out, stateMsgs = pc.expire(now, out, stateMsgs, dirtyHosts)
		silent := pc.tracker.Silent(pc.table, now)
		for _, f := range silent {
			h := pc.table.Hosts[f.HostID]
			dirtyHosts[h.HostID] = h
		}
		out = append(out, silent...)
	}
	for _, h := range dirtyHosts {
		v, err := p.codec.EncodeHost(h.Meta())
		if err != nil {
			return err
		}
		msg := kafka.Message{Topic: p.cfg.StateTopic, Partition: pc.id, Key: []byte(record.HostKey(h.HostID)), Value: v,
			WriterData: &origin{hostID: h.HostID, host: h.Host, bootID: h.BootID, seq: h.LastSeq, at: now}}
		if !fits(&msg) {
			out = pc.tooLarge(out, &state.Event{HostID: h.HostID, Host: h.Host, BootID: h.BootID, Seq: h.LastSeq, Time: now}, p.cfg.StateTopic, &msg)
			continue
		}
		stateMsgs = append(stateMsgs, msg)
	}
	p.Metrics.evaluations.Add(float64(pc.tracker.Evaluations - pc.evals))
	pc.evals = pc.tracker.Evaluations

	// A batch's findings, its state and its commit go out together even when
	// ctx ends meanwhile (a SIGTERM, a rebalance): stopped between the
	// findings and the state, the next owner would find a finding resolved
	// on one topic and its listener still open on the other, replay the
	// close and resolve it again (seen in TestAuditEndToEnd as "open
	// resolved resolved"). Bounded once ctx ends, so a dead broker cannot
	// hold a stop; until then a write that may pass is retried.
	ctx, cancel := writeContext(ctx)
	defer cancel()
	msgs, out, err := pc.findingMessages(out)
	if err != nil {
		return err
	}
	aside, err := pc.publish(ctx, msgs)
	if err != nil {
		return fmt.Errorf("publishing findings: %w", err)
	}
	p.print(out)
	if len(stateMsgs) > 0 {
		more, err := pc.publish(ctx, stateMsgs)
		if err != nil {
			return fmt.Errorf("publishing listener state: %w", err)
		}
		aside = append(aside, more...)
	}
	if len(aside) > 0 {
		// Messages the brokers refused for what they are: set aside, and
		// reported by findings of their own (which, refused too, are
		// only counted and logged).
		refused := pc.setAside(nil, aside)
		msgs, refused, err := pc.findingMessages(refused)
		if err != nil {
			return err
		}
		again, err := pc.publish(ctx, msgs)
		if err != nil {
			return fmt.Errorf("publishing findings: %w", err)
		}
		for _, r := range again {
			p.Metrics.setAside.WithLabelValues(r.msg.Topic, integrity.ReasonRefused).Inc()
			p.log.Error("the brokers refused the finding reporting a message they refused: set aside", "partition", pc.id, "topic", r.msg.Topic, "err", r.err)
		}
		p.print(refused)
	}
	if len(batch) > 0 {
		next := batch[len(batch)-1].Offset + 1
		// Records waiting for their seal are not applied yet: a restart
		// must read them again.
		if oldest, ok := pc.verifier.OldestPending(); ok && oldest < next {
			next = oldest
		}
		if next <= pc.committed {
			pc.gauges()
			return nil
		}
		if err := pc.gen.CommitOffsets(map[string]map[int]int64{p.cfg.EventsTopic: {pc.id: next}}); err != nil {
			return fmt.Errorf("committing offset %d: %w", next, err)
		}
		pc.committed = next
	}
	pc.gauges()
	return nil
}

// awaitRegistry decodes m again, after a backoff growing from retryMin
// to retryMax, until the registry answers (or says it does not know the
// schema id: the message is undecodable) or ctx ends. It returns the last
// decoding's error.
func (pc *partition) awaitRegistry(ctx context.Context, m kafka.Message, ev *state.Event, err error) error {
	p := pc.p
	bo := p.newBackoff()
	p.failing.Add(1)
	defer p.failing.Add(-1)
	for errors.Is(err, codec.ErrRegistryUnavailable) {
		p.Metrics.events.WithLabelValues("registry_unavailable").Inc()
		d := bo.next()
		if now := time.Now(); now.Sub(pc.retryLogged) >= time.Second {
			pc.retryLogged = now
			p.log.Warn("schema registry unavailable; decoding again later", "partition", pc.id, "offset", m.Offset, "in", d.Round(time.Millisecond), "err", err)
		}
		if p.sleep(ctx, d) != nil {
			return err
		}
		err = pc.decoder.Decode(ctx, m.Value, ev)
	}
	return err
}

// findingMessages are the messages of findings (and their OCSF ones),
// counted; a finding too large to write is set aside and reported by a
// small one, which out then holds instead.
func (pc *partition) findingMessages(out []findings.Finding) ([]kafka.Message, []findings.Finding, error) {
	p := pc.p
	if len(out) == 0 {
		return nil, out, nil
	}
	msgs := make([]kafka.Message, 0, len(out))
	// The loop may add to out: a finding too large to write is set
	// aside and reported by a small one.
	for i := 0; i < len(out); i++ {
		v, err := p.codec.EncodeFinding(&out[i])
		if err != nil {
			return nil, out, err
		}
		msg := kafka.Message{Topic: p.cfg.FindingsTopic, Partition: pc.id, Key: []byte(out[i].ID), Value: v}
		if !fits(&msg) {
			f := out[i]
			out = pc.tooLarge(out, &state.Event{HostID: f.HostID, Host: f.Host, BootID: f.BootID, Seq: f.Seq, Time: f.Time}, p.cfg.FindingsTopic, &msg)
			out = slices.Delete(out, i, i+1)
			i--
			continue
		}
		o := findingOrigin(&out[i])
		msg.WriterData = o
		msgs = append(msgs, msg)
		if ocsf, ok, err := p.ocsfMessage(pc.id, &out[i]); err != nil {
			return nil, out, err
		} else if ok {
			ocsf.WriterData = o
			msgs = append(msgs, ocsf)
		}
		p.Metrics.findings.WithLabelValues(out[i].State).Inc()
	}
	return msgs, out, nil
}

// writeContext is ctx for a batch's writes: it does not end with ctx, but
// batchWriteTimeout after it.
func writeContext(ctx context.Context) (context.Context, context.CancelFunc) {
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, func() {
		t := time.AfterFunc(batchWriteTimeout, cancel)
		context.AfterFunc(wctx, func() { t.Stop() })
	})
	return wctx, func() { stop(); cancel() }
}

// seenAt is when a host was last heard of, for its record Kafka took at
// at: now, once the partition is caught up; while it reads a backlog, the
// message's Kafka timestamp (never later than now), so a backlog read
// after a restart does not make every host look fresh, or silent.
func seenAt(at time.Time, now time.Time, caughtUp bool) time.Time {
	if caughtUp || at.IsZero() || at.After(now) {
		return now
	}
	return at
}

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
		p.Metrics.events.WithLabelValues("verified").Inc()
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
			Detail: fmt.Sprintf("the host already has %d listeners (the cap): the listener of its record seq %d was not added, and others after it may be missing", state.MaxListeners, ev.Seq)})
	}
	if res.Skipped {
		p.Metrics.events.WithLabelValues("duplicate").Inc()
		return out, stateMsgs, nil
	}
	p.Metrics.events.WithLabelValues("applied").Inc()
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
	if pc.tracker.IsOpen(findings.IntegrityID(pr.HostID, pr.Reason)) {
		return out
	}
	pc.p.log.Warn("integrity: "+pr.Detail, "partition", pc.id, "host_id", pr.HostID, "reason", pr.Reason)
	return pc.tracker.Integrity(pr.HostID, host, pr.BootID, pr.Reason, pr.Detail, pr.Seq, pr.Time, out)
}

// partitionOf is the partition the agent's producer (kafka-go's murmur2
// balancer, as Java's default partitioner) puts key on, of n; -1 when n is
// unknown.
func partitionOf(key []byte, n int) int {
	if n <= 0 {
		return -1
	}
	parts := make([]int, n)
	for i := range parts {
		parts[i] = i
	}
	return (&kafka.Murmur2Balancer{}).Balance(kafka.Message{Key: key}, parts...)
}

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

func (pc *partition) gauges() {
	n := 0
	for _, h := range pc.table.Hosts {
		n += len(h.Listeners)
	}
	pc.p.Metrics.listeners.WithLabelValues(pc.label).Set(float64(n))
	for _, kind := range findings.Kinds {
		pc.p.Metrics.open.WithLabelValues(pc.label, kind).Set(float64(pc.tracker.OpenByKind()[kind]))
	}
}
