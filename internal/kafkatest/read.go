package kafkatest

import (
	"context"
	"errors"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

// ReadAll reads n messages of topic from all its partitions with kafka-go,
// from the beginning, and returns them sorted by partition then offset. It
// fails the test if fewer than n arrive within timeout.
func ReadAll(t testing.TB, brokers []string, topic string, n int, timeout time.Duration) []kafka.Message {
	t.Helper()
	return ReadAllWith(t, nil, brokers, topic, n, timeout)
}

// ReadAllWith is ReadAll through dialer d, which carries TLS and SASL
// settings; nil means plaintext.
func ReadAllWith(t testing.TB, d *kafka.Dialer, brokers []string, topic string, n int, timeout time.Duration) []kafka.Message {
	t.Helper()
	if d == nil {
		d = kafka.DefaultDialer
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	parts, err := lookupPartitions(ctx, d, brokers, topic)
	if err != nil {
		t.Fatalf("read %s: %v", topic, err)
	}

	// Collection stops at n, so a reader may hold one message it can no
	// longer hand over: readers exit on cancel instead of blocking.
	readCtx, stop := context.WithCancel(ctx)
	got := make(chan kafka.Message)
	errs := make(chan error, len(parts))
	var wg sync.WaitGroup
	for _, p := range parts {
		r := kafka.NewReader(kafka.ReaderConfig{
			Brokers:     brokers,
			Topic:       topic,
			Partition:   p.ID,
			Dialer:      d,
			MinBytes:    1,
			MaxBytes:    16 << 20,
			MaxWait:     100 * time.Millisecond,
			StartOffset: kafka.FirstOffset,
		})
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer r.Close()
			for {
				m, err := r.ReadMessage(readCtx)
				if err != nil {
					if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
						errs <- err
					}
					return
				}
				select {
				case got <- m:
				case <-readCtx.Done():
					return
				}
			}
		}()
	}

	var msgs []kafka.Message
	var readErr error
collect:
	for len(msgs) < n {
		select {
		case m := <-got:
			msgs = append(msgs, m)
		case readErr = <-errs:
			break collect
		case <-ctx.Done():
			break collect
		}
	}
	stop()
	wg.Wait()
	if len(msgs) < n {
		t.Fatalf("read %s with kafka-go: got %d of %d messages within %v (error: %v)", topic, len(msgs), n, timeout, readErr)
	}
	sort.SliceStable(msgs, func(i, j int) bool {
		if msgs[i].Partition != msgs[j].Partition {
			return msgs[i].Partition < msgs[j].Partition
		}
		return msgs[i].Offset < msgs[j].Offset
	})
	return msgs
}

// Count returns how many messages topic holds over all partitions (high
// watermark minus log start), so a test can prove nothing beyond what it read
// was written.
func Count(t testing.TB, brokers []string, topic string) int64 {
	t.Helper()
	return CountWith(t, nil, brokers, topic)
}

// CountWith is Count through dialer d; nil means plaintext.
func CountWith(t testing.TB, d *kafka.Dialer, brokers []string, topic string) int64 {
	t.Helper()
	if d == nil {
		d = kafka.DefaultDialer
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	parts, err := lookupPartitions(ctx, d, brokers, topic)
	if err != nil {
		t.Fatalf("count %s: %v", topic, err)
	}
	var total int64
	for _, p := range parts {
		conn, err := d.DialLeader(ctx, "tcp", brokers[0], topic, p.ID)
		if err != nil {
			t.Fatalf("count %s: dial leader of partition %d: %v", topic, p.ID, err)
		}
		first, last, err := conn.ReadOffsets()
		conn.Close()
		if err != nil {
			t.Fatalf("count %s: offsets of partition %d: %v", topic, p.ID, err)
		}
		total += last - first
	}
	return total
}

func lookupPartitions(ctx context.Context, d *kafka.Dialer, brokers []string, topic string) ([]kafka.Partition, error) {
	var errs []error
	for _, b := range brokers {
		parts, err := d.LookupPartitions(ctx, "tcp", b, topic)
		if err == nil {
			return parts, nil
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}
