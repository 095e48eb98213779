// Package publish is the last stage of the pipeline: it hands encoded
// batches to a Sink (the Kafka producer, internal/kafkasink, in the agent)
// and keeps what the sink does not take in the spool, replaying it in
// order. It knows nothing of any one output: a Sink reports per message
// what failed, as a *sink.Error, and whether resending can help.
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

	"github.com/bindwatch/bindwatch/internal/sink"
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
	// deadline (a spool that is closed or cannot write).
	Lost atomic.Uint64
}

// Stage publishes encoded batches to Sink, keyed by Key (the host id) so
// that Kafka keeps one host's events in order on one partition.
//
// One batch is written at a time while the stage goes on taking batches
// behind it, in memory. A write not acknowledged within LateAfter (or with
// MaxPending events waiting behind it) is late: it is cancelled, and it and
// every batch behind it go to the spool. A batch the sink does not take goes
// to disk too, from its first failed message on, and so does every batch
// after it while the spool holds anything, so order is kept; a replayer
// publishes the spool front to back, deleting each batch once the sink
// acknowledged it. A cancelled write may still land: that batch is then
// delivered twice (at least once).
type Stage struct {
	Sink Sink
	// Spool keeps what Sink did not take; it is required.
	Spool *spool.Spool
	Key   []byte
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
	// Observer is told what the stage does; nil tells no one.
	Observer Observer
	// Prepare, when set, is called on messages before each Publish (it may
	// rewrite them in place); an error means they cannot be sent yet (a
	// schema id the registry has not given): they count as failed, and
	// wait in the spool.
	Prepare func([]spool.Message) error

	// withheld is set once a batch could not be accounted for: from then
	// on no ring space is freed.
	withheld bool
}

// Defaults of the zero Stage fields.
const (
	DefaultLateAfter  = time.Second
	DefaultMaxPending = 65536
)

// pending is a batch taken from the input and not yet accounted for.
type pending struct {
	msgs []spool.Message
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
	if s.Observer == nil {
		s.Observer = NopObserver{}
	}
	if s.Spool == nil {
		return errors.New("publish: no spool")
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
	// The replayer stops with ctx, or once in is closed and drained: the
	// stage ends when its input does, as every stage after capture.
	replayCtx, stopReplay := context.WithCancel(ctx)
	defer stopReplay()
	var replayer sync.WaitGroup
	replayer.Add(1)
	go func() {
		defer replayer.Done()
		s.replay(replayCtx)
	}()
	s.pipelined(deliverCtx, in)
	stopReplay()
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
	msgs := make([]spool.Message, len(b.Values))
	for i, v := range b.Values {
		msgs[i] = spool.Message{Key: s.Key, Value: v, Time: b.Times[i]}
		if i < len(b.Kinds) {
			msgs[i].Kind = SpoolKind(b.Kinds[i])
		}
	}
	s.Observer.Taken(len(msgs))
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
	s.Observer.Wrote(time.Since(fl.began))
	var retry []spool.Message
	if late != nil {
		s.Observer.Result(late)
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
	if !s.withheld {
		s.Observer.Delivered(ack)
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
func (s *Stage) publishOnce(ctx context.Context, msgs []spool.Message) []spool.Message {
	began := time.Now()
	failed, err := s.publish(ctx, msgs)
	s.Observer.Wrote(time.Since(began))
	return s.account(msgs, failed, err)
}

// publish is Sink.Publish after Prepare.
func (s *Stage) publish(ctx context.Context, msgs []spool.Message) ([]int, error) {
	if s.Prepare != nil {
		if err := s.Prepare(msgs); err != nil {
			failed := make([]int, len(msgs))
			for i := range failed {
				failed[i] = i
			}
			return failed, notPrepared{err}
		}
	}
	return s.Sink.Publish(ctx, msgs)
}

// notPrepared is a Prepare failure: nothing was asked of the sink.
type notPrepared struct{ error }

func (e notPrepared) Unwrap() error { return e.error }

// account counts the outcome of a Publish of msgs and returns what to try
// again (see publishOnce).
func (s *Stage) account(msgs []spool.Message, failed []int, err error) []spool.Message {
	var np notPrepared
	if !errors.As(err, &np) {
		s.Observer.Result(err)
	}
	s.Stats.Published.Add(uint64(len(msgs) - len(failed)))
	now := time.Now()
	next := 0 // failed is ascending: skip those indexes
	for i := range msgs {
		if next < len(failed) && failed[next] == i {
			next++
			continue
		}
		s.Observer.Acknowledged(now.Sub(msgs[i].Time))
	}
	if err == nil {
		return nil
	}
	s.Stats.Failed.Add(uint64(len(failed)))
	var perr *sink.Error
	if !errors.As(err, &perr) {
		return msgs
	}
	first := len(msgs) // the first message that failed and may pass later
	for k, idx := range perr.Failed {
		if !sink.Rejected(perr.Errs[k]) {
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
func (s *Stage) keep(ctx context.Context, msgs []spool.Message) {
	backoff := s.MinBackoff
	warned := false
	for {
		err := s.Spool.TryAppend(msgs)
		switch {
		case err == nil:
			s.Stats.Spooled.Add(uint64(len(msgs)))
			return
		case errors.Is(err, spool.ErrClosed):
			s.Stats.Lost.Add(uint64(len(msgs)))
			return
		case !errors.Is(err, spool.ErrNotWritten):
			return // dropped by the spool's policy, and counted
		}
		if !warned {
			s.Logger.Error("the spool cannot write a batch; sending it directly", "component", "publish",
				"messages", len(msgs), "error", err)
			warned = true
		}
		if ctx.Err() != nil {
			s.Stats.Lost.Add(uint64(len(msgs)))
			s.withheld = true
			s.Logger.Error("shutdown deadline passed: a batch neither Kafka nor the spool took; its ring space is kept for the next agent",
				"component", "publish", "messages", len(msgs))
			return
		}
		rest := s.publishOnce(ctx, msgs)
		if len(rest) == 0 {
			return
		}
		msgs = rest
		if sleep(ctx, backoff) {
			backoff = min(2*backoff, s.MaxBackoff)
		}
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
			s.Observer.Replay(fmt.Errorf("replaying the spool: %w", err))
			sleep(ctx, s.MaxBackoff)
			continue
		}
		s.Observer.Replay(nil)
		msgs := slices.Clone(b.Messages)
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
