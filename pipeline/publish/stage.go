package publish

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/bindwatch/bindwatch/pipeline/encode"
	"github.com/bindwatch/bindwatch/pipeline/record"
	"github.com/bindwatch/bindwatch/pipeline/spool"
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
// With a Spool, a batch Kafka does not take goes to disk, and so does every
// batch after it while the spool holds anything, so order is kept; a
// replayer publishes the spool front to back, deleting each batch once the
// brokers acknowledged it. Without one (tests, benchmarks) a failed batch is
// retried in memory until the shutdown deadline.
type Stage struct {
	Publisher *Publisher
	Spool     *spool.Spool
	Key       []byte
	// ShutdownTimeout bounds how long delivery keeps trying once ctx is
	// cancelled; what is undelivered then is spooled (or counted as lost).
	ShutdownTimeout time.Duration
	Stats           *StageStats
	Logger          *slog.Logger
	// Backoff between attempts grows from MinBackoff to MaxBackoff.
	MinBackoff, MaxBackoff time.Duration
	// Each Observer is optional; a prometheus.Histogram is one.
	EventLatency Observer // per event: seconds from bind to acknowledgement
	WriteLatency Observer // per Publish call: seconds until it returned
	BatchSize    Observer // per batch: messages in it
	// Report, when set, is told the outcome of every write: nil when all
	// its messages were acknowledged. Health checks follow it.
	Report func(error)
	// Delivered, when set, is told after each batch its delivery token
	// (encode.Batch.Ack): its events are now acknowledged, spooled, or
	// counted as lost, and their ring space can be freed.
	Delivered func(record.Ack)
}

// Observer takes one sample of a distribution.
type Observer interface{ Observe(float64) }

// ObserverFunc adapts a function to Observer.
type ObserverFunc func(float64)

// Observe calls f(v).
func (f ObserverFunc) Observe(v float64) { f(v) }

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
	var replayer sync.WaitGroup
	if s.Spool != nil {
		replayer.Add(1)
		go func() {
			defer replayer.Done()
			s.replay(ctx)
		}()
	}

	for b := range in {
		msgs := make([]kafka.Message, len(b.Values))
		for i, v := range b.Values {
			msgs[i] = kafka.Message{Key: s.Key, Value: v, Time: b.Times[i]}
		}
		if s.BatchSize != nil {
			s.BatchSize.Observe(float64(len(msgs)))
		}
		switch {
		case len(msgs) == 0:
		case s.Spool == nil:
			s.retryInMemory(deliverCtx, msgs)
		case s.spooling():
			s.toSpool(msgs)
		default:
			if failed := s.publishOnce(deliverCtx, msgs); len(failed) > 0 {
				s.toSpool(failed)
			}
		}
		if s.Delivered != nil {
			s.Delivered(b.Ack)
		}
	}
	cancel()
	replayer.Wait()
	return nil
}

// spooling is true while the spool holds batches: new ones queue behind them.
func (s *Stage) spooling() bool {
	n, _ := s.Spool.Len()
	return n > 0
}

// publishOnce makes one Publish call and returns the messages that failed
// and may succeed later; rejected ones are counted and left out.
func (s *Stage) publishOnce(ctx context.Context, msgs []kafka.Message) []kafka.Message {
	began := time.Now()
	failed, err := s.Publisher.Publish(ctx, msgs)
	if s.WriteLatency != nil {
		s.WriteLatency.Observe(time.Since(began).Seconds())
	}
	if s.Report != nil {
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
	retry := make([]kafka.Message, 0, len(perr.Failed))
	for i, idx := range perr.Failed {
		if Rejected(perr.Errs[i]) {
			s.Stats.Rejected.Add(1)
			s.Logger.Error("kafka rejected a message; it is dropped", "component", "publish", "error", perr.Errs[i])
			continue
		}
		retry = append(retry, msgs[idx])
	}
	if len(retry) > 0 {
		s.Logger.Warn("kafka publish failed", "component", "publish", "failed", len(retry), "of", len(msgs), "error", err)
	}
	return retry
}

// toSpool appends msgs to the spool; the spool counts and logs what it
// cannot keep.
func (s *Stage) toSpool(msgs []kafka.Message) {
	batch := make([]spool.Message, len(msgs))
	for i, m := range msgs {
		batch[i] = spool.Message{Key: m.Key, Value: m.Value, Time: m.Time}
	}
	if err := s.Spool.Append(batch); err != nil {
		if errors.Is(err, spool.ErrClosed) {
			s.Stats.Lost.Add(uint64(len(msgs)))
		}
		return
	}
	s.Stats.Spooled.Add(uint64(len(msgs)))
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
			sleep(ctx, s.MaxBackoff)
			continue
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
