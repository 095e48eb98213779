package kafkatest

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

// awkward are values a line-based reader would mangle.
var awkward = [][]byte{
	[]byte("plain"),
	{},
	[]byte("new\nline\r\n"),
	{0x00, 0xff, 0xc3, 0x01, '\t', 0x00},
	bytes.Repeat([]byte{0, '\n', 0xff}, 1000),
	nil,
}

func produce(t *testing.T, d *kafka.Dialer, brokers []string, topic string, msgs []kafka.Message) {
	t.Helper()
	tr := &kafka.Transport{}
	if d != nil {
		tr.TLS, tr.SASL = d.TLS, d.SASLMechanism
	}
	w := &kafka.Writer{
		Addr: kafka.TCP(brokers...), Topic: topic, Balancer: &kafka.Hash{},
		BatchTimeout: time.Millisecond, Transport: tr,
		RequiredAcks: kafka.RequireAll, // kafka-go's default is none
	}
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

func awkwardMessages() []kafka.Message {
	var msgs []kafka.Message
	for i, v := range awkward {
		key := []byte(fmt.Sprintf("key-%d\n\x00", i%2))
		if i == 3 {
			key = nil
		}
		msgs = append(msgs, kafka.Message{Key: key, Value: v})
	}
	return msgs
}

// TestReadersAreByteExact checks both readers against what kafka-go wrote,
// per key in order, on a 3-broker cluster.
func TestReadersAreByteExact(t *testing.T) {
	c := Start(t, Options{Topic: "exact", Partitions: 4})
	if len(c.Addrs) != 3 {
		t.Fatalf("brokers %v, want 3", c.Addrs)
	}
	msgs := awkwardMessages()
	produce(t, nil, c.Addrs, "exact", msgs)

	got := ReadAll(t, c.Addrs, "exact", len(msgs), 10*time.Second)
	var viaGo, viaKcat []string
	for _, m := range got {
		viaGo = append(viaGo, fmt.Sprintf("%d/%q=%q", m.Partition, m.Key, m.Value))
	}
	for _, r := range KcatConsume(t, c.Addrs, "exact", len(msgs), 20*time.Second) {
		viaKcat = append(viaKcat, fmt.Sprintf("%d/%q=%q", r.Partition, r.Key, r.Value))
	}
	if n := Count(t, c.Addrs, "exact"); n != int64(len(msgs)) {
		t.Errorf("Count = %d, want %d", n, len(msgs))
	}
	// Expected: in each partition, the messages in production order.
	var want []string
	for p := range 4 {
		for _, m := range msgs {
			if gp := got[indexOf(got, m)].Partition; gp == p {
				want = append(want, fmt.Sprintf("%d/%q=%q", p, m.Key, m.Value))
			}
		}
	}
	if fmt.Sprint(viaGo) != fmt.Sprint(want) {
		t.Errorf("kafka-go read\n%v\nwant\n%v", viaGo, want)
	}
	sortedKcat := sortByPartition(viaKcat)
	if fmt.Sprint(sortedKcat) != fmt.Sprint(want) {
		t.Errorf("kcat read\n%v\nwant\n%v", sortedKcat, want)
	}
	// NULL and empty stay apart: one NULL key, one NULL and one empty value.
	var nullKeys, nullValues, emptyValues int
	for _, r := range KcatConsume(t, c.Addrs, "exact", len(msgs), 20*time.Second) {
		if r.Key == nil {
			nullKeys++
		}
		if r.Value == nil {
			nullValues++
		} else if len(r.Value) == 0 {
			emptyValues++
		}
	}
	if nullKeys != 1 || nullValues != 1 || emptyValues != 1 {
		t.Errorf("kcat read %d NULL keys, %d NULL values, %d empty values; want 1 each", nullKeys, nullValues, emptyValues)
	}
}

// indexOf finds the read message carrying m's key and value.
func indexOf(got []kafka.Message, m kafka.Message) int {
	for i, g := range got {
		if bytes.Equal(g.Key, m.Key) && bytes.Equal(g.Value, m.Value) && (g.Key == nil) == (m.Key == nil) {
			return i
		}
	}
	return -1
}

// sortByPartition orders kcat's interleaved partitions, keeping each one's
// order: entries start with the partition number.
func sortByPartition(s []string) []string {
	var out []string
	for p := range 4 {
		for _, e := range s {
			if e[0] == byte('0'+p) {
				out = append(out, e)
			}
		}
	}
	return out
}

// TestRestartKeepsDataWithDataDir stops and restarts a persistent cluster on
// the same ports; without DataDir the topic comes back empty.
func TestRestartKeepsDataWithDataDir(t *testing.T) {
	for _, persist := range []bool{true, false} {
		t.Run(fmt.Sprintf("persist=%v", persist), func(t *testing.T) {
			o := Options{Topic: "durable", Partitions: 2}
			if persist {
				o.DataDir = t.TempDir()
			}
			c := Start(t, o)
			before := append([]string(nil), c.Addrs...)
			msgs := awkwardMessages()
			produce(t, nil, c.Addrs, "durable", msgs)
			c.Restart(t)
			if fmt.Sprint(c.Addrs) != fmt.Sprint(before) {
				t.Fatalf("restarted on %v, was %v", c.Addrs, before)
			}
			n := Count(t, c.Addrs, "durable")
			if persist && n != int64(len(msgs)) || !persist && n != 0 {
				t.Fatalf("after restart the topic holds %d messages (persist=%v, wrote %d)", n, persist, len(msgs))
			}
			if persist {
				got := ReadAll(t, c.Addrs, "durable", len(msgs), 10*time.Second)
				for _, m := range msgs {
					if indexOf(got, m) < 0 {
						t.Errorf("message %q=%q lost across restart", m.Key, m.Value)
					}
				}
			}
		})
	}
}
