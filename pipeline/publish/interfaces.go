package publish

// What the stage talks to: the output it publishes to, and whoever
// observes it for metrics and health.

import (
	"context"
	"time"

	"github.com/bindwatch/bindwatch/internal/spool"
	"github.com/bindwatch/bindwatch/pipeline/record"
)

// Sink is an output: the Kafka producer (internal/kafkasink) in the agent.
type Sink interface {
	// Publish sends msgs in order and waits until the output has them.
	// It returns the indexes of those it does not have, ascending, and an
	// error; with a *sink.Error, failures marked with sink.Reject are not
	// tried again and the others are kept from the first of them on.
	// nil, nil means every message was taken.
	Publish(ctx context.Context, msgs []spool.Message) (failed []int, err error)
	// Ping checks that the output is reachable, for health.
	Ping(ctx context.Context) error
	// Close flushes and releases the output, waiting at most until ctx
	// is done.
	Close(ctx context.Context) error
}

// Observer is told what the stage does, for metrics and health. Its
// methods are called from the stage's goroutines and must not block.
type Observer interface {
	// Taken: a batch of n messages came from the input.
	Taken(n int)
	// Wrote: one Publish call returned after took.
	Wrote(took time.Duration)
	// Result: the outcome of a write, nil when every message of it was
	// taken. Health follows it. A batch that could not be prepared is
	// not a write and is not reported.
	Result(err error)
	// Acknowledged: one message was taken, age after its event.
	Acknowledged(age time.Duration)
	// Replay: whether the replayer can read the spool; an error while
	// reading it fails, nil once it reads again.
	Replay(err error)
	// Delivered: a batch's delivery token (encode.Batch.Ack). Its events
	// are now acknowledged, spooled, or counted as lost, and their ring
	// space can be freed. Batches are reported in order. A batch that
	// neither the output nor the spool took by the shutdown deadline (a
	// full disk) is not reported, nor is any batch after it: their ring
	// space is kept for the next agent.
	Delivered(ack record.Ack)
}

// NopObserver observes nothing; embed it to implement only some of
// Observer.
type NopObserver struct{}

func (NopObserver) Taken(int)                  {}
func (NopObserver) Wrote(time.Duration)        {}
func (NopObserver) Result(error)               {}
func (NopObserver) Acknowledged(time.Duration) {}
func (NopObserver) Replay(error)               {}
func (NopObserver) Delivered(record.Ack)       {}
