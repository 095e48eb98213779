// Package topic reads a whole Kafka topic, every partition at once, without
// a consumer group: for tools that look at a topic (bindwatch consume) and
// tests that read one back, neither of which should commit offsets.
package topic

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
)

// Reader merges the messages of every partition of a topic. Messages of one
// partition arrive in offset order; partitions interleave.
type Reader struct {
	msgs   chan kafka.Message
	errs   chan error
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Partitions lists the topic's partitions, asking each broker in turn.
func Partitions(ctx context.Context, d *kafka.Dialer, brokers []string, topic string) ([]kafka.Partition, error) {
	var errs []error
	for _, b := range brokers {
		parts, err := d.LookupPartitions(ctx, "tcp", b, topic)
		if err == nil {
			if len(parts) == 0 {
				return nil, fmt.Errorf("topic %s has no partitions", topic)
			}
			return parts, nil
		}
		errs = append(errs, err)
	}
	return nil, fmt.Errorf("looking up topic %s: %w", topic, errors.Join(errs...))
}

// Open starts reading topic from the oldest retained message of each
// partition (fromBeginning) or from its end. d carries TLS and SASL settings.
func Open(ctx context.Context, d *kafka.Dialer, brokers []string, topic string, fromBeginning bool) (*Reader, error) {
	parts, err := Partitions(ctx, d, brokers, topic)
	if err != nil {
		return nil, err
	}
	start := kafka.LastOffset
	if fromBeginning {
		start = kafka.FirstOffset
	}
	readCtx, cancel := context.WithCancel(context.Background())
	r := &Reader{msgs: make(chan kafka.Message, 64), errs: make(chan error, len(parts)), cancel: cancel}
	for _, p := range parts {
		pr := kafka.NewReader(kafka.ReaderConfig{
			Brokers:     brokers,
			Topic:       topic,
			Partition:   p.ID,
			Dialer:      d,
			MinBytes:    1,
			MaxBytes:    16 << 20,
			MaxWait:     100 * time.Millisecond,
			StartOffset: start,
		})
		// kafka-go honours StartOffset only for consumer groups: a reader
		// of one partition starts at its oldest message unless told.
		if err := pr.SetOffset(start); err != nil {
			pr.Close()
			cancel()
			r.wg.Wait()
			return nil, fmt.Errorf("partition %d: %w", p.ID, err)
		}
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			defer pr.Close()
			for {
				m, err := pr.ReadMessage(readCtx)
				if err != nil {
					if readCtx.Err() == nil {
						r.errs <- fmt.Errorf("partition %d: %w", p.ID, err)
					}
					return
				}
				select {
				case r.msgs <- m:
				case <-readCtx.Done():
					return
				}
			}
		}()
	}
	return r, nil
}

// Next returns the next message of any partition, waiting until ctx ends.
func (r *Reader) Next(ctx context.Context) (kafka.Message, error) {
	select {
	case m := <-r.msgs:
		return m, nil
	case err := <-r.errs:
		return kafka.Message{}, err
	case <-ctx.Done():
		return kafka.Message{}, ctx.Err()
	}
}

// Buffered is how many messages are ready to be returned without waiting.
func (r *Reader) Buffered() int { return len(r.msgs) }

// Close stops every partition reader.
func (r *Reader) Close() error {
	r.cancel()
	r.wg.Wait()
	return nil
}
