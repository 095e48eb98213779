package kafkasink

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/bindwatch/bindwatch/internal/spool"
	"github.com/bindwatch/bindwatch/test/kafkatest"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// newPublisher makes a publisher closed at the end of the test.
func newPublisher(t testing.TB, cfg Config) *Producer {
	t.Helper()
	p, err := New(cfg, quiet)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = p.Close(ctx)
	})
	return p
}

// batch makes n messages over hosts keys. Each value starts with its index
// (big endian) and goes on with seeded random bytes, so values are binary,
// hold newlines and NULs, and are all different.
func batch(seed uint64, hosts, n, valueSize int) []spool.Message {
	rng := rand.New(rand.NewPCG(seed, 0))
	msgs := make([]spool.Message, n)
	for i := range msgs {
		v := make([]byte, valueSize)
		binary.BigEndian.PutUint64(v, seed<<32|uint64(i))
		for j := 8; j < len(v); j++ {
			v[j] = byte(rng.Uint32())
		}
		msgs[i] = spool.Message{Key: []byte(fmt.Sprintf("host-%d\x00\n", i%hosts)), Value: v}
	}
	return msgs
}

// perKey lists the values of each key in order.
func perKey[T any](items []T, kv func(T) (k, v []byte)) map[string][][]byte {
	m := map[string][][]byte{}
	for _, it := range items {
		k, v := kv(it)
		m[string(k)] = append(m[string(k)], v)
	}
	return m
}

func msgKV(m kafka.Message) ([]byte, []byte)         { return m.Key, m.Value }
func sentKV(m spool.Message) ([]byte, []byte)        { return m.Key, m.Value }
func kcatKV(r kafkatest.KcatRecord) ([]byte, []byte) { return r.Key, r.Value }

// diffPerKey compares two per-key value lists byte for byte.
func diffPerKey(want, got map[string][][]byte) (string, bool) {
	if len(want) != len(got) {
		return fmt.Sprintf("%d keys, want %d", len(got), len(want)), false
	}
	for k, wv := range want {
		gv := got[k]
		if len(gv) != len(wv) {
			return fmt.Sprintf("key %q: %d values, want %d", k, len(gv), len(wv)), false
		}
		for i := range wv {
			if !bytes.Equal(gv[i], wv[i]) {
				return fmt.Sprintf("key %q: value %d differs (got %x..., want %x...)", k, i, head(gv[i]), head(wv[i])), false
			}
		}
	}
	return "", true
}

func head(b []byte) []byte { return b[:min(len(b), 12)] }

// produceObserver records what the brokers saw in produce requests.
type produceObserver struct {
	mu     sync.Mutex
	acks   []int16
	codecs []int8 // record batch attributes & 7
}

func observeProduce(c *kafkatest.Cluster) *produceObserver {
	o := &produceObserver{}
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		pr := req.(*kmsg.ProduceRequest)
		o.mu.Lock()
		defer o.mu.Unlock()
		o.acks = append(o.acks, pr.Acks)
		for _, t := range pr.Topics {
			for _, p := range t.Partitions {
				var b kmsg.RecordBatch
				if err := b.ReadFrom(p.Records); err == nil {
					o.codecs = append(o.codecs, int8(b.Attributes&7))
				}
			}
		}
		return nil, nil, false // observe only: the cluster handles it
	})
	return o
}

func (o *produceObserver) seen() (acks []int16, codecs []int8) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]int16(nil), o.acks...), append([]int8(nil), o.codecs...)
}
