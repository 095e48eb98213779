// Package publish sends encoded event batches to Kafka and says exactly which
// messages did not make it, so the spool can keep those and nothing else.
//
// One Publisher wraps one long-lived kafka-go Writer: connections, metadata
// and per-partition batching live as long as the agent. Publish is
// synchronous, one call per encoded batch.
package publish

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
)

// Publisher publishes batches of messages to one topic.
type Publisher struct {
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

// New checks cfg and prepares a publisher. It does not contact the brokers:
// call Ping for that.
func New(cfg Config, logger *slog.Logger) (*Publisher, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("kafka publisher config: %w", err)
	}
	tc, err := cfg.TLS.tlsConfig()
	if err != nil {
		return nil, fmt.Errorf("kafka publisher config: %w", err)
	}
	mech, err := cfg.SASL.mechanism()
	if err != nil {
		return nil, fmt.Errorf("kafka publisher config: %w", err)
	}
	if logger == nil {
		logger = slog.Default()
	}
	log := logger.With("component", "publish")

	var codec kafka.Compression
	switch cfg.Compression {
	case "gzip":
		codec = kafka.Gzip
	case "snappy":
		codec = kafka.Snappy
	case "lz4":
		codec = kafka.Lz4
	case "zstd":
		codec = kafka.Zstd
	}
	acks := kafka.RequireAll
	switch cfg.Acks {
	case "one":
		acks = kafka.RequireOne
	case "none":
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
	return &Publisher{
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
// indexes of the messages that were not acknowledged, ascending, and an
// *Error saying why each failed; nil, nil when all were.
//
// A message without a timestamp gets the current time (Kafka's retention
// would otherwise see it as written in 1970). Publish may still read the
// messages' bytes after returning on a timeout, so the caller must not reuse
// them. A failed message may in fact have been written (its acknowledgement
// lost, or a timed-out batch still retrying in the background): delivery is
// at least once, and consumers drop duplicates by (host id, boot id, seq).
func (p *Publisher) Publish(ctx context.Context, msgs []kafka.Message) ([]int, error) {
	if len(msgs) == 0 {
		return nil, nil
	}
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, p.cfg.WriteTimeout)
	defer cancel()

	now := time.Now()
	var oversized []int
	for i := range msgs {
		if msgs[i].Time.IsZero() {
			msgs[i].Time = now
		}
		if messageSize(&msgs[i]) > MaxMessageBytes {
			oversized = append(oversized, i)
		}
	}

	// kafka-go fails a whole call for one oversized message, so those are
	// failed here and the rest sent; sent[j] is the index of send[j].
	send, sent := msgs, []int(nil)
	if len(oversized) > 0 {
		send = make([]kafka.Message, 0, len(msgs)-len(oversized))
		sent = make([]int, 0, len(msgs)-len(oversized))
		for i, o := 0, 0; i < len(msgs); i++ {
			if o < len(oversized) && oversized[o] == i {
				o++
				continue
			}
			send = append(send, msgs[i])
			sent = append(sent, i)
		}
	}

	errs := make(map[int]error, len(oversized))
	for _, i := range oversized {
		errs[i] = fmt.Errorf("%w: %d bytes", ErrMessageTooLarge, messageSize(&msgs[i]))
	}
	index := func(j int) int {
		if sent == nil {
			return j
		}
		return sent[j]
	}
	if len(send) > 0 {
		err := p.w.WriteMessages(ctx, send...)
		var perMsg kafka.WriteErrors
		switch {
		case err == nil:
		case errors.As(err, &perMsg) && len(perMsg) == len(send):
			// Each message carries its partition batch's outcome.
			for j, e := range perMsg {
				if e != nil {
					errs[index(j)] = e
				}
			}
		default:
			// Nothing was attributed per message: the topic's metadata
			// failed, the publisher is closed, or the deadline passed
			// while batches were in flight. All of them count as failed.
			if errors.Is(err, context.DeadlineExceeded) && parent.Err() == nil {
				err = fmt.Errorf("not acknowledged within write timeout %v: %w", p.cfg.WriteTimeout, err)
			}
			for j := range send {
				errs[index(j)] = err
			}
		}
	}
	if len(errs) == 0 {
		return nil, nil
	}
	perr := &Error{Total: len(msgs), Failed: make([]int, 0, len(errs)), Errs: make([]error, 0, len(errs))}
	for i := range msgs {
		if e, ok := errs[i]; ok {
			perr.Failed = append(perr.Failed, i)
			perr.Errs = append(perr.Errs, e)
		}
	}
	return perr.Failed, perr
}

// Close flushes what is pending and stops the writer, waiting at most until
// ctx is done. kafka-go's Writer.Close waits for every batch's retries, over
// a minute when the brokers are gone; past the deadline Close returns an
// error and leaves the writer to finish, or not, in the background.
func (p *Publisher) Close(ctx context.Context) error {
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
func (p *Publisher) Ping(ctx context.Context) error {
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
func (p *Publisher) Stats() kafka.WriterStats { return p.w.Stats() }

// String names the publisher without its credentials.
func (p *Publisher) String() string {
	return fmt.Sprintf("publish.Publisher{topic=%s brokers=%v}", p.cfg.Topic, p.cfg.Brokers)
}

// GoString keeps %#v from printing the unexported config and its password.
func (p *Publisher) GoString() string { return p.String() }
