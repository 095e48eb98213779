package publish

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/bindwatch/bindwatch/internal/spool"
	"github.com/bindwatch/bindwatch/pipeline/encode"
	"github.com/bindwatch/bindwatch/pipeline/record"
)

// StageStats count what the publish stage did, in messages; safe to read at
// any time.
type StageStats struct {
	Published atomic.Uint64 // acknowledged by the brokers, replays included
	Failed    atomic.Uint64 // in failed writes (then spooled, or retried)
	Rejected  atomic.Uint64 // refused for their content: retrying cannot help
	Spooled   atomic.Uint64 // written to the spool
	Replayed  atomic.Uint64 // acknowledged from the spool
	// Lost counts messages neither delivered nor spooled at the shutdown
	// deadline (only without a spool, or when the spool is closed).
	Lost atomic.Uint64
}

// Stage publishes encoded batches, keyed by Key (the host id) so that Kafka
// keeps one host's events in order on one partition.
//
// With a Spool, one batch is written at a time while the stage goes on
// taking batches behind it, in memory. A write not acknowledged within
// LateAfter (or with MaxPending events waiting behind it) is late: it is
// cancelled, and it and every batch behind it go to the spool. A batch Kafka
// does not take goes to disk too, from its first failed message on, and so
// does every batch after it while the spool holds anything, so order is
// kept; a replayer publishes the spool front to back, deleting each batch
// once the brokers acknowledged it. A cancelled write may still land: that
// batch is then delivered twice (at least once). Without a spool (tests,
// benchmarks) a failed batch is retried in memory until the shutdown
// deadline.
type Stage struct {
	Publisher *Publisher
	Spool     *spool.Spool
	Key       []byte
	// ShutdownTimeout bounds how long delivery keeps trying once ctx is
	// cancelled; what is undelivered then is spooled (or counted as lost).
	ShutdownTimeout time.Duration
	// LateAfter is how long a write may wait for its acknowledgement
	// before its batch and those behind it are spooled; DefaultLateAfter
	// when zero.
	LateAfter time.Duration
	// MaxPending bounds the events held in memory behind a write in
	// flight; reaching it makes the write late at once.
	// DefaultMaxPending when zero.
	MaxPending int
	Stats      *StageStats
	Logger     *slog.Logger
	// Backoff between attempts grows from MinBackoff to MaxBackoff.
	MinBackoff, MaxBackoff time.Duration
	// Each Observer is optional; a prometheus.Histogram is one.
	EventLatency Observer // per event: seconds from bind to acknowledgement
	WriteLatency Observer // per Publish call: seconds until it returned
	BatchSize    Observer // per batch: messages in it
	// Prepare, when set, is called on messages before each Publish (it may
	// rewrite them in place); an error means they cannot be sent yet (a
	// schema id the registry has not given): they count as failed, and
	// wait in the spool.
	Prepare func([]kafka.Message) error
	// Report, when set, is told the outcome of every write: nil when all
	// its messages were acknowledged. Health checks follow it.
	Report func(error)
	// ReportReplay, when set, is told whether the replayer can read the
	// spool: an error while reading it fails, nil once it reads again.
	ReportReplay func(error)
	// Delivered, when set, is told after each batch its delivery token
	// (encode.Batch.Ack): its events are now acknowledged, spooled, or
	// counted as lost, and their ring space can be freed. Batches are
	// reported in order. A batch that neither Kafka nor the spool took by
	// the shutdown deadline (a full disk) is not reported, nor is any
	// batch after it: their ring space is kept for the next agent.
	Delivered func(record.Ack)

	// withheld is set once a batch could not be accounted for: from then
	// on no ring space is freed.
	withheld bool
}

// Defaults of the zero Stage fields.
const (
	DefaultLateAfter  = time.Second
	DefaultMaxPending = 65536
)

// Observer takes one sample of a distribution.
type Observer interface{ Observe(float64) }

// ObserverFunc adapts a function to Observer.
type ObserverFunc func(float64)

// Observe calls f(v).
func (f ObserverFunc) Observe(v float64) { f(v) }

// pending is a batch taken from the input and not yet accounted for.
type pending struct {
	msgs []kafka.Message
	// events counts the messages held in memory; ack is the batch's
	// delivery token.
	events int
	ack    record.Ack
}

// flight is the write in progress.
type flight struct {
	p      pending
	cancel context.CancelFunc
	done   chan struct{}
	began  time.Time
	failed []int
	err    error
}

// Run handles every batch from in until in is closed. Once ctx is
// cancelled, the batches still coming are published until ShutdownTimeout
// passes and spooled after; the replayer stops and leaves the spool to the
// next start. Run never blocks past the deadline, spool writes aside.
func (s *Stage) Run(ctx context.Context, in <-chan encode.Batch) error {
	if s.MinBackoff <= 0 {
		s.MinBackoff = 100 * time.Millisecond
	}
	if s.MaxBackoff < s.MinBackoff {
		s.MaxBackoff = 5 * time.Second
	}
	if s.LateAfter <= 0 {
		s.LateAfter = DefaultLateAfter
	}
	if s.MaxPending <= 0 {
		s.MaxPending = DefaultMaxPending
	}
	// deliverCtx outlives ctx by ShutdownTimeout: shutdown drains.
	deliverCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	go func() {
		<-ctx.Done()
		t := time.NewTimer(s.ShutdownTimeout)
		defer t.Stop()
		select {
		case <-t.C:
			cancel()
		case <-deliverCtx.Done():
		}
	}()
	if s.Spool == nil {
		for b := range in {
			p := s.take(b)
			if len(p.msgs) > 0 {
				s.retryInMemory(deliverCtx, p.msgs)
			}
			s.delivered(p.ack)
		}
		return nil
	}
	var replayer sync.WaitGroup
	replayer.Add(1)
	go func() {
		defer replayer.Done()
		s.replay(ctx)
	}()
	s.pipelined(deliverCtx, in)
	cancel()
	replayer.Wait()
	return nil
}

// pipelined publishes one batch at a time while it takes the next ones
// from in, so that a slow or absent Kafka never stops the stages before it
// for longer than LateAfter.
func (s *Stage) pipelined(ctx context.Context, in <-chan encode.Batch) {
	var queue []pending // behind the write in flight, oldest first
	queued := 0         // events in queue
	var fl *flight
	late := time.NewTimer(time.Hour)
	late.Stop()
	defer late.Stop()
	for in != nil || fl != nil || len(queue) > 0 {
		if fl == nil && len(queue) > 0 {
			p := queue[0]
			queue = queue[1:]
			queued -= p.events
			switch {
			case len(p.msgs) == 0:
			case s.spooling() || ctx.Err() != nil:
				s.keep(ctx, p.msgs)
			default:
				fl = s.start(ctx, p)
				late.Reset(s.LateAfter)
				continue
			}
			s.delivered(p.ack)
			continue
		}
		var take <-chan encode.Batch
		if in != nil && (fl == nil || queued < s.MaxPending) {
			take = in
		}
		var landed chan struct{}
		if fl != nil {
			landed = fl.done
		}
		select {
		case b, ok := <-take:
			if !ok {
				in = nil
				continue
			}
			p := s.take(b)
			queue = append(queue, p)
			queued += p.events
			if fl != nil && queued >= s.MaxPending {
				late.Stop()
				s.abandon(ctx, fl, fmt.Errorf("%d events waiting behind it", queued))
				fl = nil
			}
		case <-landed:
			late.Stop()
			s.finish(ctx, fl, nil)
			fl = nil
		case <-late.C:
			s.abandon(ctx, fl, fmt.Errorf("not acknowledged within %v", s.LateAfter))
			fl = nil
		}
	}
}

// take turns an encoded batch into messages.
func (s *Stage) take(b encode.Batch) pending {
	msgs := make([]kafka.Message, len(b.Values))
	for i, v := range b.Values {
		msgs[i] = kafka.Message{Key: s.Key, Value: v, Time: b.Times[i]}
	}
	if s.BatchSize != nil {
		s.BatchSize.Observe(float64(len(msgs)))
	}
	return pending{msgs: msgs, events: len(msgs), ack: b.Ack}
}

// start writes p in the background.
func (s *Stage) start(ctx context.Context, p pending) *flight {
	wctx, cancel := context.WithCancel(ctx)
	fl := &flight{p: p, cancel: cancel, done: make(chan struct{}), began: time.Now()}
	go func() {
		defer close(fl.done)
		fl.failed, fl.err = s.publish(wctx, p.msgs)
	}()
	return fl
}

// abandon stops waiting for a late write: it is cancelled and its whole
// batch spooled, with everything behind it (the spool now holds batches).
// If the write lands anyway, its events are delivered twice.
func (s *Stage) abandon(ctx context.Context, fl *flight, why error) {
	fl.cancel()
	<-fl.done
	late := fmt.Errorf("kafka write of %d messages is late (%w); it and what follows go to the spool", len(fl.p.msgs), why)
	if fl.err == nil {
		s.finish(ctx, fl, nil) // acknowledged just in time
		return
	}
	s.Logger.Warn("kafka write late", "component", "publish", "error", late)
	fl.failed = make([]int, len(fl.p.msgs))
	for i := range fl.failed {
		fl.failed[i] = i
	}
	fl.err = late
	s.finish(ctx, fl, late)
}

// finish accounts for a write that returned: what failed is kept.
func (s *Stage) finish(ctx context.Context, fl *flight, late error) {
	defer fl.cancel()
	if s.WriteLatency != nil {
		s.WriteLatency.Observe(time.Since(fl.began).Seconds())
	}
	var retry []kafka.Message
	if late != nil {
		if s.Report != nil {
			s.Report(late)
		}
		s.Stats.Failed.Add(uint64(len(fl.p.msgs)))
		retry = fl.p.msgs
	} else {
		retry = s.account(fl.p.msgs, fl.failed, fl.err)
	}
	if len(retry) > 0 {
		s.keep(ctx, retry)
	}
	s.delivered(fl.p.ack)
}

// delivered frees the ring space of a batch, unless some were withheld.
func (s *Stage) delivered(ack record.Ack) {
	if s.Delivered != nil && !s.withheld {
		s.Delivered(ack)
	}
}

// spooling is true while the spool holds batches: new ones queue behind them.
func (s *Stage) spooling() bool {
	n, _ := s.Spool.Len()
	return n > 0
}

// publishOnce makes one Publish call and returns the messages to try again
// later: every message from the first one that failed and may succeed later
// on, so that order is kept; rejected ones before it are counted and left
// out.
func (s *Stage) publishOnce(ctx context.Context, msgs []kafka.Message) []kafka.Message {
	began := time.Now()
	failed, err := s.publish(ctx, msgs)
	if s.WriteLatency != nil {
		s.WriteLatency.Observe(time.Since(began).Seconds())
	}
	return s.account(msgs, failed, err)
}

// publish is Publisher.Publish after Prepare.
func (s *Stage) publish(ctx context.Context, msgs []kafka.Message) ([]int, error) {
	if s.Prepare != nil {
		if err := s.Prepare(msgs); err != nil {
			failed := make([]int, len(msgs))
			for i := range failed {
				failed[i] = i
			}
			return failed, notPrepared{err}
		}
	}
	return s.Publisher.Publish(ctx, msgs)
}

// notPrepared is a Prepare failure: nothing was asked of Kafka.
type notPrepared struct{ error }

func (e notPrepared) Unwrap() error { return e.error }

// account counts the outcome of a Publish of msgs and returns what to try
// again (see publishOnce).
func (s *Stage) account(msgs []kafka.Message, failed []int, err error) []kafka.Message {
	var np notPrepared
	if s.Report != nil && !errors.As(err, &np) {
		s.Report(err)
	}
	s.Stats.Published.Add(uint64(len(msgs) - len(failed)))
	if s.EventLatency != nil {
		now := time.Now()
		next := 0 // failed is ascending: skip those indexes
		for i := range msgs {
			if next < len(failed) && failed[next] == i {
				next++
				continue
			}
			s.EventLatency.Observe(now.Sub(msgs[i].Time).Seconds())
		}
	}
	if err == nil {
		return nil
	}
	s.Stats.Failed.Add(uint64(len(failed)))
	var perr *Error
	if !errors.As(err, &perr) {
		return msgs
	}
	first := len(msgs) // the first message that failed and may pass later
	for k, idx := range perr.Failed {
		if !Rejected(perr.Errs[k]) {
			first = idx
			break
		}
		s.Stats.Rejected.Add(1)
		s.Logger.Error("kafka rejected a message; it is dropped", "component", "publish", "error", perr.Errs[k])
	}
	if first == len(msgs) {
		return nil
	}
	s.Logger.Warn("kafka publish failed", "component", "publish", "failed", len(failed), "of", len(msgs),
		"kept from", first, "error", err)
	return slices.Clone(msgs[first:])
}

// keep appends msgs to the spool. A batch the spool cannot write (a full
// disk) is sent directly, retried until Kafka or the spool takes it; if
// neither has by the shutdown deadline, it is counted as lost and its ring
// space, and that of every batch after it, is kept. Refusals by the spool's
// policy (full, too large) are counted by the spool.
func (s *Stage) keep(ctx context.Context, msgs []kafka.Message) {
	backoff := s.MinBackoff
	batch := make([]spool.Message, len(msgs))
	for i, m := range msgs {
		batch[i] = spool.Message{Key: m.Key, Value: m.Value, Time: m.Time}
	}
	warned := false
	for {
		err := s.Spool.TryAppend(batch)
		switch {
		case err == nil:
			s.Stats.Spooled.Add(uint64(len(batch)))
			return
		case errors.Is(err, spool.ErrClosed):
			s.Stats.Lost.Add(uint64(len(batch)))
			return
		case !errors.Is(err, spool.ErrNotWritten):
			return // dropped by the spool's policy, and counted
		}
		if !warned {
			s.Logger.Error("the spool cannot write a batch; sending it directly", "component", "publish",
				"messages", len(batch), "error", err)
			warned = true
		}
		if ctx.Err() != nil {
			s.Stats.Lost.Add(uint64(len(batch)))
			s.withheld = true
			s.Logger.Error("shutdown deadline passed: a batch neither Kafka nor the spool took; its ring space is kept for the next agent",
				"component", "publish", "messages", len(batch))
			return
		}
		rest := s.publishOnce(ctx, msgs)
		if len(rest) == 0 {
			return
		}
		msgs = rest
		batch = batch[len(batch)-len(rest):]
		if sleep(ctx, backoff) {
			backoff = min(2*backoff, s.MaxBackoff)
		}
	}
}

// retryInMemory sends msgs until each is acknowledged, rejected, or ctx ends.
func (s *Stage) retryInMemory(ctx context.Context, msgs []kafka.Message) {
	backoff := s.MinBackoff
	for len(msgs) > 0 {
		msgs = s.publishOnce(ctx, msgs)
		if len(msgs) == 0 {
			return
		}
		if ctx.Err() != nil {
			s.Stats.Lost.Add(uint64(len(msgs)))
			s.Logger.Error("shutdown deadline passed: messages not delivered", "component", "publish", "lost", len(msgs))
			return
		}
		if !sleep(ctx, backoff) {
			continue // the deadline came: one last attempt is made above
		}
		backoff = min(2*backoff, s.MaxBackoff)
	}
}

// replay publishes the spool oldest first until ctx is done.
func (s *Stage) replay(ctx context.Context) {
	backoff := s.MinBackoff
	for ctx.Err() == nil {
		b, err := s.Spool.Peek()
		if errors.Is(err, spool.ErrEmpty) {
			select {
			case <-s.Spool.Appended():
			case <-ctx.Done():
			}
			continue
		}
		if err != nil {
			s.Logger.Error("reading the spool", "component", "publish", "error", err)
			if s.ReportReplay != nil {
				s.ReportReplay(fmt.Errorf("replaying the spool: %w", err))
			}
			sleep(ctx, s.MaxBackoff)
			continue
		}
		if s.ReportReplay != nil {
			s.ReportReplay(nil)
		}
		msgs := make([]kafka.Message, len(b.Messages))
		for i, m := range b.Messages {
			msgs[i] = kafka.Message{Key: m.Key, Value: m.Value, Time: m.Time}
		}
		// Retry what failed, not the whole batch, until all of it is in.
		for len(msgs) > 0 && ctx.Err() == nil {
			before := len(msgs)
			msgs = s.publishOnce(ctx, msgs)
			s.Stats.Replayed.Add(uint64(before - len(msgs)))
			if len(msgs) > 0 && sleep(ctx, backoff) {
				backoff = min(2*backoff, s.MaxBackoff)
			}
		}
		if len(msgs) > 0 {
			return // stopping; the batch stays spooled
		}
		backoff = s.MinBackoff
		if err := s.Spool.Ack(b); err != nil && !errors.Is(err, spool.ErrNotHead) {
			s.Logger.Error("acknowledging a replayed batch in the spool", "component", "publish", "error", err)
		}
	}
}

// sleep waits d or until ctx is done, reporting whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
