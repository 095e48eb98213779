package kafkatest

import (
	"context"
	"sort"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/bindwatch/bindwatch/internal/topic"
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
func ReadAllWith(t testing.TB, d *kafka.Dialer, brokers []string, topicName string, n int, timeout time.Duration) []kafka.Message {
	t.Helper()
	if d == nil {
		d = kafka.DefaultDialer
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	r, err := topic.Open(ctx, d, brokers, topicName, true)
	if err != nil {
		t.Fatalf("read %s: %v", topicName, err)
	}
	defer r.Close()
	var msgs []kafka.Message
	var readErr error
	for len(msgs) < n {
		m, err := r.Next(ctx)
		if err != nil {
			readErr = err
			break
		}
		msgs = append(msgs, m)
	}
	if len(msgs) < n {
		t.Fatalf("read %s with kafka-go: got %d of %d messages within %v (error: %v)", topicName, len(msgs), n, timeout, readErr)
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
func CountWith(t testing.TB, d *kafka.Dialer, brokers []string, topicName string) int64 {
	t.Helper()
	if d == nil {
		d = kafka.DefaultDialer
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	parts, err := topic.Partitions(ctx, d, brokers, topicName)
	if err != nil {
		t.Fatalf("count %s: %v", topicName, err)
	}
	var total int64
	for _, p := range parts {
		conn, err := d.DialLeader(ctx, "tcp", brokers[0], topicName, p.ID)
		if err != nil {
			t.Fatalf("count %s: dial leader of partition %d: %v", topicName, p.ID, err)
		}
		first, last, err := conn.ReadOffsets()
		conn.Close()
		if err != nil {
			t.Fatalf("count %s: offsets of partition %d: %v", topicName, p.ID, err)
		}
		total += last - first
	}
	return total
}
