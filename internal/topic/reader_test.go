package topic_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/bindwatch/bindwatch/internal/topic"
	"github.com/bindwatch/bindwatch/test/kafkatest"
)

// TestOpenFromTheEnd: without fromBeginning, only messages written after
// Open are read; with it, the older ones come first.
func TestOpenFromTheEnd(t *testing.T) {
	cluster := kafkatest.Start(t, kafkatest.Options{Brokers: 1, Topic: "t", Partitions: 2})
	w := &kafka.Writer{Addr: kafka.TCP(cluster.Addrs...), Topic: "t", Balancer: &kafka.RoundRobin{}, BatchTimeout: time.Millisecond}
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	write := func(vals ...string) {
		t.Helper()
		var msgs []kafka.Message
		for _, v := range vals {
			msgs = append(msgs, kafka.Message{Value: []byte(v)})
		}
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			t.Fatal(err)
		}
	}
	write("old-1", "old-2", "old-3", "old-4")
	d := &kafka.Dialer{Timeout: 5 * time.Second}
	for _, tc := range []struct {
		fromBeginning bool
		want          int // messages to read, the new one among them
	}{{false, 1}, {true, 6}} {
		t.Run(fmt.Sprint("fromBeginning=", tc.fromBeginning), func(t *testing.T) {
			r, err := topic.Open(ctx, d, cluster.Addrs, "t", tc.fromBeginning)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			time.Sleep(300 * time.Millisecond) // the readers found their offsets
			fresh := fmt.Sprint("new-", tc.fromBeginning)
			write(fresh)
			var got []string
			for len(got) < tc.want {
				m, err := r.Next(ctx)
				if err != nil {
					t.Fatalf("after %v: %v", got, err)
				}
				got = append(got, string(m.Value))
			}
			if !tc.fromBeginning && got[0] != fresh {
				t.Fatalf("read %v from the end, want only %s", got, fresh)
			}
		})
	}
}
