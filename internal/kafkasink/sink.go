// Package kafkasink is the agent's Kafka output: it sends encoded event
// batches to Kafka and says exactly which messages did not make it (as a
// *sink.Error), so the spool can keep those and nothing else. It owns the
// producer's configuration and defaults (Config, DefaultConfig); the
// connection itself (TLS, SASL) is internal/kafkaconn's.
//
// One Producer wraps one long-lived kafka-go Writer: connections, metadata
// and per-partition batching live as long as the agent. Publish is
// synchronous, one call per encoded batch.
package kafkasink

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"

	"github.com/bindwatch/bindwatch/internal/sink"
	"github.com/bindwatch/bindwatch/internal/spool"
)

// Producer publishes batches of messages to one topic.
type Producer struct {
	cfg       Config // defaulted; holds the password, so never printed as is
	w         *kafka.Writer
	transport *kafka.Transport
	tls       *tls.Config
	mech      sasl.Mechanism
	log       *slog.Logger

	closeOnce sync.Once
	closed    chan struct{} // closed when the writer has flushed and stopped
	closeErr  error
}

// New checks cfg and prepares a producer. It does not contact the brokers:
// call Ping for that.
func New(cfg Config, logger *slog.Logger) (*Producer, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("kafka publisher config: %w", err)
	}
	tc, err := cfg.TLS.Config()
	if err != nil {
		return nil, fmt.Errorf("kafka publisher config: %w", err)
	}
	mech, err := cfg.SASL.SASLMechanism()
	if err != nil {
		return nil, fmt.Errorf("kafka publisher config: %w", err)
	}
	if logger == nil {
		logger = slog.Default()
	}
	log := logger.With("component", "publish")

	var codec kafka.Compression
	switch cfg.Compression {
	case CompressionGzip:
		codec = kafka.Gzip
	case CompressionSnappy:
		codec = kafka.Snappy
	case CompressionLZ4:
		codec = kafka.Lz4
	case CompressionZstd:
		useSmallWindowZstd()
		codec = kafka.Zstd
	}
	acks := kafka.RequireAll
	switch cfg.Acks {
	case AcksOne:
		acks = kafka.RequireOne
	case AcksNone:
		acks = kafka.RequireNone
	}

	tr := newTransport(cfg, tc, mech)
	w := &kafka.Writer{
		Addr:  kafka.TCP(cfg.Brokers...),
		Topic: cfg.Topic,
		// Murmur2 is the Java client's partitioner: one host id lands on
		// the same partition whichever client computes it, and one
		// partition keeps that host's events in order.
		Balancer:     &kafka.Murmur2Balancer{},
		BatchSize:    cfg.BatchSize,
		BatchBytes:   MaxMessageBytes,
		BatchTimeout: cfg.BatchTimeout,
		ReadTimeout:  cfg.WriteTimeout,
		WriteTimeout: cfg.WriteTimeout,
		// kafka-go's defaults, spelled out because metadataTTL is sized
		// against them: ten attempts with 100 ms..1 s backoff is ~7 s
		// of retrying before a batch fails.
		MaxAttempts:     10,
		WriteBackoffMin: 100 * time.Millisecond,
		WriteBackoffMax: time.Second,
		RequiredAcks:    acks,
		Compression:     codec,
		Async:           false,
		Transport:       tr,
		// Auto-creation would turn a mistyped topic into a new topic with
		// the broker's defaults; failing loudly is better.
		AllowAutoTopicCreation: false,
		ErrorLogger: kafka.LoggerFunc(func(format string, args ...any) {
			log.Warn("kafka write attempt failed", "detail", fmt.Sprintf(format, args...))
		}),
	}
	log.Info("kafka publisher configured", "config", cfg)
	return &Producer{
		cfg:       cfg,
		w:         w,
		transport: tr,
		tls:       tc,
		mech:      mech,
		log:       log,
		closed:    make(chan struct{}),
	}, nil
}

// Publish sends msgs, keyed by the caller, and waits until the brokers
// acknowledge them as Acks asks, or WriteTimeout passes. It returns the
// indexes of the messages that were not acknowledged, ascending, and a
// *sink.Error saying why each failed; nil, nil when all were. Failures that
// resending cannot cure are marked with sink.Reject.
//
// Order: msgs are written as consecutive chunks that each fit one producer
// record batch (BatchSize messages, MaxMessageBytes), one chunk after the
// other, so that a later record batch can never land while an earlier one
// failed. Once a chunk fails for a reason that may pass, the chunks after
// it are not sent and fail with sink.ErrNotSent: the failed messages are always
// everything from the first retryable failure on (apart from messages of
// other keys that the same chunk wrote to other partitions).
//
// A record batch the brokers find too large (MESSAGE_TOO_LARGE,
// RECORD_LIST_TOO_LARGE: Kafka checks max.message.bytes against the whole
// batch) is split in two and each half sent again; only a message refused
// alone is failed, as rejected. A batch refused for INVALID_TIMESTAMP is
// sent once more stamped with the current time.
//
// A message without a timestamp gets the current time (Kafka's retention
// would otherwise see it as written in 1970). Publish may still read the
// messages' bytes after returning on a timeout, so the caller must not reuse
// them. A failed message may in fact have been written (its acknowledgement
// lost, or a timed-out batch still retrying in the background): delivery is
// at least once, and consumers drop duplicates by (host id, boot id, seq).
func (p *Producer) Publish(ctx context.Context, batch []spool.Message) ([]int, error) {
	if len(batch) == 0 {
		return nil, nil
	}
	msgs := make([]kafka.Message, len(batch))
	for i, m := range batch {
		msgs[i] = kafka.Message{Key: m.Key, Value: m.Value, Time: m.Time}
	}
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, p.cfg.WriteTimeout)
	defer cancel()

	now := time.Now()
	errs := map[int]error{}
	var send []int
	for i := range msgs {
		if msgs[i].Time.IsZero() {
			msgs[i].Time = now
		}
		// kafka-go fails a whole call for one oversized message, so those
		// are failed here and the rest sent.
		if n := messageSize(&msgs[i]); n > MaxMessageBytes {
			errs[i] = fmt.Errorf("%w: %d bytes", ErrMessageTooLarge, n)
			continue
		}
		send = append(send, i)
	}

	queue := p.chunks(msgs, send)
	for len(queue) > 0 {
		c := queue[0]
		queue = queue[1:]
		failed := p.write(ctx, parent, msgs, c)
		var split []int
		retryable := false
		for _, i := range c.idx {
			err, ok := failed[i]
			if !ok {
				continue
			}
			if batchTooLarge(err) && len(c.idx) > 1 {
				split = append(split, i)
				continue
			}
			if batchTooLarge(err) {
				err = fmt.Errorf("%w: refused by the brokers alone: %w", ErrMessageTooLarge, err)
			}
			errs[i] = err
			retryable = retryable || !Rejected(err)
		}
		if len(split) > 0 {
			// Halves go first, in order, before anything after them.
			half := len(split) / 2
			queue = append([]chunk{{idx: split[:half]}, {idx: split[half:]}}, queue...)
			continue
		}
		if retryable {
			for _, rest := range queue {
				for _, i := range rest.idx {
					errs[i] = sink.ErrNotSent
				}
			}
			break
		}
	}
	if len(errs) == 0 {
		return nil, nil
	}
	perr := &sink.Error{Op: "kafka publish", Total: len(msgs), Failed: make([]int, 0, len(errs)), Errs: make([]error, 0, len(errs))}
	for i := range msgs {
		if e, ok := errs[i]; ok {
			if Rejected(e) {
				e = sink.Reject(e)
			}
			perr.Failed = append(perr.Failed, i)
			perr.Errs = append(perr.Errs, e)
		}
	}
	return perr.Failed, perr
}

// chunk is a run of consecutive messages (their indexes) that fits one
// producer record batch.
type chunk struct{ idx []int }

// chunks cuts send into runs of at most BatchSize messages and
// MaxMessageBytes, as kafka-go counts them, so that each WriteMessages call
// makes one record batch per partition.
func (p *Producer) chunks(msgs []kafka.Message, send []int) []chunk {
	var out []chunk
	var cur []int
	var bytes int64
	for _, i := range send {
		n := messageSize(&msgs[i])
		if len(cur) > 0 && (len(cur) >= p.cfg.BatchSize || bytes+n > MaxMessageBytes) {
			out = append(out, chunk{idx: cur})
			cur, bytes = nil, 0
		}
		cur = append(cur, i)
		bytes += n
	}
	if len(cur) > 0 {
		out = append(out, chunk{idx: cur})
	}
	return out
}

// write sends one chunk and returns the error of each message of it that
// failed. A chunk refused for its timestamps is sent once more, re-stamped.
func (p *Producer) write(ctx, parent context.Context, msgs []kafka.Message, c chunk) map[int]error {
	send := make([]kafka.Message, len(c.idx))
	for j, i := range c.idx {
		send[j] = msgs[i]
	}
	failed := p.writeOnce(ctx, parent, send, c.idx)
	var restamp []int
	for j, i := range c.idx {
		if err, ok := failed[i]; ok && errors.Is(err, kafka.InvalidTimestamp) {
			restamp = append(restamp, j)
		}
	}
	if len(restamp) == 0 {
		return failed
	}
	// The broker's clock disagrees with the event's: the message's own
	// time is in its body, so the record's may be the broker's now.
	now := time.Now()
	again := make([]kafka.Message, len(restamp))
	idx := make([]int, len(restamp))
	for k, j := range restamp {
		again[k] = send[j]
		again[k].Time = now
		idx[k] = c.idx[j]
		delete(failed, c.idx[j])
	}
	p.log.Warn("kafka refused the record timestamps; sending again stamped now", "messages", len(again))
	for i, err := range p.writeOnce(ctx, parent, again, idx) {
		failed[i] = err
	}
	return failed
}

// writeOnce is one WriteMessages call; idx[j] is the caller's index of
// send[j].
func (p *Producer) writeOnce(ctx, parent context.Context, send []kafka.Message, idx []int) map[int]error {
	err := p.w.WriteMessages(ctx, send...)
	if err == nil {
		return nil
	}
	failed := make(map[int]error, len(send))
	var perMsg kafka.WriteErrors
	if errors.As(err, &perMsg) && len(perMsg) == len(send) {
		// Each message carries its partition batch's outcome.
		for j, e := range perMsg {
			if e != nil {
				failed[idx[j]] = e
			}
		}
		return failed
	}
	// Nothing was attributed per message: the topic's metadata failed, the
	// producer is closed, or the deadline passed while batches were in
	// flight. All of them count as failed.
	if errors.Is(err, context.DeadlineExceeded) && parent.Err() == nil {
		err = fmt.Errorf("not acknowledged within write timeout %v: %w", p.cfg.WriteTimeout, err)
	}
	for _, i := range idx {
		failed[i] = err
	}
	return failed
}

// Close flushes what is pending and stops the writer, waiting at most until
// ctx is done. kafka-go's Writer.Close waits for every batch's retries, over
// a minute when the brokers are gone; past the deadline Close returns an
// error and leaves the writer to finish, or not, in the background.
func (p *Producer) Close(ctx context.Context) error {
	p.closeOnce.Do(func() {
		go func() {
			p.closeErr = p.w.Close()
			p.transport.CloseIdleConnections()
			close(p.closed)
		}()
	})
	select {
	case <-p.closed:
		if p.closeErr != nil {
			return fmt.Errorf("close kafka writer: %w", p.closeErr)
		}
		return nil
	case <-ctx.Done():
		p.log.Warn("kafka writer did not stop by the deadline; pending batches abandoned", "error", ctx.Err())
		return fmt.Errorf("close kafka writer: pending batches abandoned at the deadline: %w", ctx.Err())
	}
}

// Ping asks the brokers for the topic's metadata over a fresh connection and
// checks that every partition has a leader. It proves the brokers answer,
// TLS and SASL pass and the topic exists, which the writer's cached metadata
// cannot. Without a deadline in ctx it waits at most WriteTimeout.
func (p *Producer) Ping(ctx context.Context) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.cfg.WriteTimeout)
		defer cancel()
	}
	tr := newTransport(p.cfg, p.tls, p.mech)
	defer tr.CloseIdleConnections()
	client := &kafka.Client{Addr: kafka.TCP(p.cfg.Brokers...), Transport: tr}
	res, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{p.cfg.Topic}})
	if err != nil {
		return fmt.Errorf("kafka metadata from %v: %w", p.cfg.Brokers, err)
	}
	for _, t := range res.Topics {
		if t.Name != p.cfg.Topic {
			continue
		}
		if t.Error != nil {
			return fmt.Errorf("kafka topic %s: %w", t.Name, t.Error)
		}
		if len(t.Partitions) == 0 {
			return fmt.Errorf("kafka topic %s has no partitions", t.Name)
		}
		for _, part := range t.Partitions {
			if part.Error != nil {
				return fmt.Errorf("kafka topic %s partition %d: %w", t.Name, part.ID, part.Error)
			}
			if part.Leader.Host == "" {
				return fmt.Errorf("kafka topic %s partition %d has no leader", t.Name, part.ID)
			}
		}
		return nil
	}
	return fmt.Errorf("kafka topic %s: not in the metadata of %v", p.cfg.Topic, p.cfg.Brokers)
}

// Stats is kafka-go's writer statistics since the previous call (counters
// reset on each call), for metrics.
func (p *Producer) Stats() kafka.WriterStats { return p.w.Stats() }

// String names the producer without its credentials.
func (p *Producer) String() string {
	return fmt.Sprintf("kafkasink.Producer{topic=%s brokers=%v}", p.cfg.Topic, p.cfg.Brokers)
}

// GoString keeps %#v from printing the unexported config and its password.
func (p *Producer) GoString() string { return p.String() }
