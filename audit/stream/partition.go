package stream

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/bindwatch/bindwatch/audit/findings"
	"github.com/bindwatch/bindwatch/audit/integrity"
	"github.com/bindwatch/bindwatch/audit/record"
	"github.com/bindwatch/bindwatch/audit/state"
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
	// silenceChecked is when hosts were last checked for silence, and
	// gaugedAt when the gauges last counted the table.
	silenceChecked, gaugedAt time.Time
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
	pc.table.HostCap, pc.table.ListenerCap = p.cfg.MaxHosts, p.cfg.MaxListeners
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
	pc.gauges(true)
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
			pc.gauges(false)
			return nil
		}
		if err := pc.gen.CommitOffsets(map[string]map[int]int64{p.cfg.EventsTopic: {pc.id: next}}); err != nil {
			return fmt.Errorf("committing offset %d: %w", next, err)
		}
		pc.committed = next
	}
	pc.gauges(false)
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

// gaugeInterval bounds how often the gauges walk the table: counting the
// listeners walks every host (250 000 at the cap), too much for every
// batch; a scrape every few seconds sees them a second late at most.
const gaugeInterval = time.Second

// gauges sets the partition's listener and open-finding gauges, at most
// once a gaugeInterval unless force.
func (pc *partition) gauges(force bool) {
	now := time.Now()
	if !force && now.Sub(pc.gaugedAt) < gaugeInterval {
		return
	}
	pc.gaugedAt = now
	n := 0
	for _, h := range pc.table.Hosts {
		n += len(h.Listeners)
	}
	pc.p.Metrics.listeners.WithLabelValues(pc.label).Set(float64(n))
	open := pc.tracker.OpenByKind()
	for _, kind := range findings.Kinds {
		pc.p.Metrics.open.WithLabelValues(pc.label, kind).Set(float64(open[kind]))
	}
}
