package publish

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/bindwatch/bindwatch/pipeline/encode"
)

// StageStats count what the publish stage did, in messages; safe to read at
// any time.
type StageStats struct {
	Published atomic.Uint64 // acknowledged by the brokers
	Failed    atomic.Uint64 // failed attempts, each retried unless rejected or lost
	Rejected  atomic.Uint64 // refused for their content: retrying cannot help
	Lost      atomic.Uint64 // still failing when the shutdown deadline came
	Batches   atomic.Uint64 // batches fully delivered
}

// Stage publishes encoded batches. Each batch's messages are keyed by Key
// (the host id), so Kafka keeps one host's events in order on one partition.
type Stage struct {
	Publisher *Publisher
	Key       []byte
	// ShutdownTimeout bounds how long delivery keeps trying once ctx is
	// cancelled; what is still undelivered then is counted as lost.
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
	// Delivered, when set, is told after each batch how many events it
	// accounted for (encode.Batch.Events): they are now acknowledged, or
	// counted as rejected or lost, and their ring space can be freed.
	Delivered func(events int)
}

// Observer takes one sample of a distribution.
type Observer interface{ Observe(float64) }

// ObserverFunc adapts a function to Observer.
type ObserverFunc func(float64)

// Observe calls f(v).
func (f ObserverFunc) Observe(v float64) { f(v) }

// Run publishes every batch from in until in is closed. A batch that fails
// is retried, only its failed messages, until they are acknowledged: a
// broker outage stalls the stage, the queues behind it fill, and the capture
// stage counts what it cannot queue. Run returns when in is closed and the
// last batch is delivered, or lost at the shutdown deadline.
func (s *Stage) Run(ctx context.Context, in <-chan encode.Batch) error {
	minB, maxB := s.MinBackoff, s.MaxBackoff
	if minB <= 0 {
		minB = 100 * time.Millisecond
	}
	if maxB < minB {
		maxB = 5 * time.Second
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

	for b := range in {
		msgs := make([]kafka.Message, len(b.Values))
		for i, v := range b.Values {
			msgs[i] = kafka.Message{Key: s.Key, Value: v}
		}
		if s.BatchSize != nil {
			s.BatchSize.Observe(float64(len(msgs)))
		}
		s.deliver(deliverCtx, msgs, minB, maxB)
		if s.Delivered != nil {
			s.Delivered(b.Events)
		}
		if s.EventLatency != nil {
			// At the batch's last acknowledgement: retried messages are the
			// late ones, and their latency should show it.
			now := time.Now()
			for _, t := range b.Times {
				s.EventLatency.Observe(now.Sub(t).Seconds())
			}
		}
	}
	return nil
}

// deliver sends msgs until each is acknowledged, rejected, or ctx ends.
func (s *Stage) deliver(ctx context.Context, msgs []kafka.Message, minB, maxB time.Duration) {
	backoff := minB
	for len(msgs) > 0 {
		began := time.Now()
		failed, err := s.Publisher.Publish(ctx, msgs)
		if s.WriteLatency != nil {
			s.WriteLatency.Observe(time.Since(began).Seconds())
		}
		if s.Report != nil {
			s.Report(err)
		}
		s.Stats.Published.Add(uint64(len(msgs) - len(failed)))
		if err == nil {
			s.Stats.Batches.Add(1)
			return
		}
		s.Stats.Failed.Add(uint64(len(failed)))
		var perr *Error
		retry := msgs[:0:0]
		if errors.As(err, &perr) {
			for i, idx := range perr.Failed {
				if Rejected(perr.Errs[i]) {
					s.Stats.Rejected.Add(1)
					continue
				}
				retry = append(retry, msgs[idx])
			}
		} else {
			retry = msgs
		}
		if ctx.Err() != nil {
			s.Stats.Lost.Add(uint64(len(retry)))
			s.Logger.Error("shutdown deadline passed: messages not delivered", "component", "publish", "lost", len(retry), "error", err)
			return
		}
		s.Logger.Warn("kafka publish failed; retrying", "component", "publish", "failed", len(failed), "of", len(msgs), "retry_in", backoff, "error", err)
		msgs = retry
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
		}
		backoff = min(2*backoff, maxB)
	}
}
