package stream

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/bindwatch/bindwatch/internal/audit/findings"
	"github.com/bindwatch/bindwatch/internal/audit/record"
	"github.com/bindwatch/bindwatch/internal/audit/state"
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

	decoder *record.EventDecoder
	table   *state.Table
	tracker *findings.Tracker
	polGen  uint64
	// reevaluate is set until the partition first catches up after its
	// rebuild: the policy may have changed while nobody held it.
	reevaluate bool
	evals      uint64
	// silenceChecked is when hosts were last checked for silence.
	silenceChecked time.Time
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
	var err error
	if pc.decoder, err = record.NewEventDecoder(p.decoder); err != nil {
		return err
	}
	var st RebuildStats
	st, err = Rebuild(ctx, p.dialer, c.Brokers, c.StateTopic, c.FindingsTopic, pc.id, p.codec, pc.table, pc.tracker)
	if err != nil {
		return fmt.Errorf("rebuilding partition %d: %w", pc.id, err)
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
	for _, m := range batch {
		if err := pc.decoder.Decode(ctx, m.Value, &ev); err != nil {
			p.Metrics.events.WithLabelValues("undecodable").Inc()
			p.log.Warn("undecodable event", "partition", m.Partition, "offset", m.Offset, "err", err)
			continue
		}
		if ev.HostID == "" {
			p.Metrics.events.WithLabelValues("undecodable").Inc()
			continue
		}
		res := pc.table.Apply(&ev)
		if res.Skipped {
			p.Metrics.events.WithLabelValues("duplicate").Inc()
			continue
		}
		p.Metrics.events.WithLabelValues("applied").Inc()
		h := pc.table.Hosts[ev.HostID]
		dirtyHosts[h.HostID] = h
		h.LastSeen = seenAt(m, now, caughtUp)
		fs, replayed := pc.tracker.Apply(h, res, &ev)
		if !replayed {
			out = append(out, fs...)
		}
		for _, ch := range res.Changes {
			msg := kafka.Message{Topic: p.cfg.StateTopic, Partition: pc.id, Key: []byte(record.ListenerKey(ch.L.HostID, ch.L.Key))}
			if ch.Op != state.Removed {
				var err error
				if msg.Value, err = p.codec.EncodeListener(ch.L); err != nil {
					return err
				}
			}
			stateMsgs = append(stateMsgs, msg)
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
		stateMsgs = append(stateMsgs, kafka.Message{Topic: p.cfg.StateTopic, Partition: pc.id, Key: []byte(record.HostKey(h.HostID)), Value: v})
	}
	p.Metrics.evaluations.Add(float64(pc.tracker.Evaluations - pc.evals))
	pc.evals = pc.tracker.Evaluations

	// A batch's findings, its state and its commit go out together even when
	// ctx ends meanwhile (a SIGTERM, a rebalance): stopped between the
	// findings and the state, the next owner would find a finding resolved
	// on one topic and its listener still open on the other, replay the
	// close and resolve it again (seen in TestAuditEndToEnd as "open
	// resolved resolved"). Bounded, so a dead broker cannot hold a stop.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), batchWriteTimeout)
	defer cancel()
	if len(out) > 0 {
		msgs := make([]kafka.Message, len(out))
		for i := range out {
			v, err := p.codec.EncodeFinding(&out[i])
			if err != nil {
				return err
			}
			msgs[i] = kafka.Message{Topic: p.cfg.FindingsTopic, Partition: pc.id, Key: []byte(out[i].ID), Value: v}
			p.Metrics.findings.WithLabelValues(out[i].State).Inc()
		}
		if err := p.writer.WriteMessages(ctx, msgs...); err != nil {
			return fmt.Errorf("publishing findings: %w", err)
		}
		p.print(out)
	}
	if len(stateMsgs) > 0 {
		if err := p.writer.WriteMessages(ctx, stateMsgs...); err != nil {
			return fmt.Errorf("publishing listener state: %w", err)
		}
	}
	if len(batch) > 0 {
		next := batch[len(batch)-1].Offset + 1
		if err := pc.gen.CommitOffsets(map[string]map[int]int64{p.cfg.EventsTopic: {pc.id: next}}); err != nil {
			return fmt.Errorf("committing offset %d: %w", next, err)
		}
		pc.committed = next
	}
	pc.gauges()
	return nil
}

// seenAt is when a host was last heard of, for its record in m: now, once
// the partition is caught up; while it reads a backlog, the message's
// Kafka timestamp (never later than now), so a backlog read after a
// restart does not make every host look fresh, or silent.
func seenAt(m kafka.Message, now time.Time, caughtUp bool) time.Time {
	if caughtUp || m.Time.IsZero() || m.Time.After(now) {
		return now
	}
	return m.Time
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
