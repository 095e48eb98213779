package kafkasink

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/bindwatch/bindwatch/internal/spool"
	"github.com/bindwatch/bindwatch/test/kafkatest"
)

// eventLike makes n values of about size bytes that compress like encoded
// bind events: repeated host and command strings around varying numbers.
func eventLike(n, size int) []spool.Message {
	rng := rand.New(rand.NewPCG(1, 2))
	comms := []string{"nginx", "sshd", "postgres", "chronyd", "systemd-resolve", "java"}
	msgs := make([]spool.Message, n)
	for i := range msgs {
		v := fmt.Appendf(nil, "\xc3\x01fingerpr%s%s%d\x00%s%d%d%d10.%d.%d.%d:%d",
			"web-042.prod.example.net", "1f0c8e6a9b2d4e7f8a1b2c3d4e5f6a7b", i,
			comms[rng.IntN(len(comms))], rng.Uint32(), rng.Uint32(), rng.Uint64(),
			rng.IntN(256), rng.IntN(256), rng.IntN(256), rng.IntN(65536))
		for len(v) < size {
			v = append(v, byte(rng.IntN(4)))
		}
		msgs[i] = spool.Message{Key: []byte("1f0c8e6a9b2d4e7f8a1b2c3d4e5f6a7b"), Value: v[:size]}
	}
	return msgs
}

// BenchmarkPublish publishes 500-message batches of 200-byte values, one
// host key, acks=all unless named, to a 3-broker kfake cluster in the same
// process (so the broker's CPU is counted against the same two cores).
func BenchmarkPublish(b *testing.B) {
	const batchLen, valueLen = 500, 200
	cases := []struct {
		name string
		cfg  Config
	}{
		{"codec=none", Config{Compression: "none"}},
		{"codec=lz4", Config{Compression: "lz4"}},
		{"codec=snappy", Config{Compression: "snappy"}},
		{"codec=zstd", Config{Compression: "zstd"}},
		{"codec=gzip", Config{Compression: "gzip"}},
		{"acks=one", Config{Acks: "one", Compression: "none"}},
		{"acks=none", Config{Acks: "none", Compression: "none"}},
		// BatchSize above the call's length: every call waits out
		// BatchTimeout before it is sent.
		{"batchsize=1000,timeout=1ms", Config{BatchSize: 1000, BatchTimeout: time.Millisecond, Compression: "none"}},
		{"batchsize=1000,timeout=10ms", Config{BatchSize: 1000, BatchTimeout: 10 * time.Millisecond, Compression: "none"}},
		// BatchSize below it: each call goes out as several requests.
		{"batchsize=100", Config{BatchSize: 100, Compression: "none"}},
	}
	for _, bc := range cases {
		b.Run(bc.name, func(b *testing.B) {
			c := kafkatest.Start(b, kafkatest.Options{Topic: topic, Partitions: 3})
			cfg := bc.cfg
			cfg.Brokers, cfg.Topic = c.Addrs, topic
			if cfg.BatchTimeout == 0 {
				// What these cases measured before the producer took the
				// agent's defaults (10ms): comparable numbers.
				cfg.BatchTimeout = time.Millisecond
			}
			p := newPublisher(b, cfg)
			msgs := eventLike(batchLen, valueLen)
			if _, err := p.Publish(b.Context(), msgs); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(batchLen * valueLen)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if failed, err := p.Publish(b.Context(), msgs); err != nil {
					b.Fatalf("failed %d: %v", len(failed), err)
				}
			}
			b.ReportMetric(float64(b.N*batchLen)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}
