package stream

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/bindwatch/bindwatch/audit/policy"
	"github.com/bindwatch/bindwatch/schemas"
	"github.com/bindwatch/bindwatch/schemas/codec"
	"github.com/bindwatch/bindwatch/test/kafkatest"
)

// BenchmarkThroughputKafka is one instance through Kafka: 200 000 events
// (listen and close pairs on 1 000 hosts, half of them findings) already
// on a 3-partition topic of 3 kfake brokers in this process, read, applied,
// published (state and findings) and committed.
//
// The sealed variant has each host seal its records as the agent does, a
// seal every 100 records (2 per host), so the audit verifies 2 000 seals
// and hashes every record.
func BenchmarkThroughputKafka(b *testing.B) {
	b.Run("unsealed", func(b *testing.B) { benchmarkThroughputKafka(b, false) })
	b.Run("sealed", func(b *testing.B) { benchmarkThroughputKafka(b, true) })
}

func benchmarkThroughputKafka(b *testing.B, sealed bool) {
	const hosts, perHost = 1000, 200
	cl := kafkatest.Start(b, kafkatest.Options{Topic: "bindwatch.bind-events", Partitions: 3})
	cfg := testConfig(cl.Addrs)
	text, _ := schemas.BindEventSchema(schemas.Latest)
	enc, _ := codec.NewSingleObject([]byte(text))
	w := &kafka.Writer{Addr: kafka.TCP(cl.Addrs...), Topic: cfg.EventsTopic, Balancer: &kafka.Murmur2Balancer{}, BatchSize: 5000,
		BatchBytes: 1000000, BatchTimeout: time.Millisecond, RequiredAcks: kafka.RequireAll}
	defer w.Close()
	var msgs []kafka.Message
	for h := range hosts {
		fh := &fakeHost{id: fmt.Sprintf("%032x", h), name: fmt.Sprintf("h%d-x", h), boot: "b"}
		sh := &sealingHost{fakeHost: fh}
		_, sh.key, _ = ed25519.GenerateKey(nil)
		var batch []*schemas.BindEvent
		for i := 0; i < perHost/2; i++ {
			exe, port := fmt.Sprintf("/usr/sbin/d%d", 2+(i%8)*10), int32(1002+(i%8)*10)
			if i%2 == 1 {
				exe, port = "/usr/bin/nc", int32(4000+i)
			}
			for _, kind := range []string{"listen", "close"} {
				ev := fh.ev(kind, exe, "TCP", "192.0.2.1", port, int64(i+1))
				if sealed {
					if batch = append(batch, ev); len(batch) == 100 {
						msgs = append(msgs, sh.batch(b, enc, batch...)...)
						batch = batch[:0]
					}
					continue
				}
				v, _ := enc.Append(nil, ev)
				msgs = append(msgs, kafka.Message{Key: []byte(fh.id), Value: v})
			}
		}
		if len(msgs) >= 20000 {
			if err := w.WriteMessages(context.Background(), msgs...); err != nil {
				b.Fatal(err)
			}
			msgs = msgs[:0]
		}
	}
	if err := w.WriteMessages(context.Background(), msgs...); err != nil {
		b.Fatal(err)
	}
	pol, _ := policy.Parse("bench.yaml", []byte(policy1000()))
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		c := *cfg
		c.Group = fmt.Sprintf("bench-%d", n)
		c.StateTopic, c.FindingsTopic = fmt.Sprintf("state-%d", n), fmt.Sprintf("findings-%d", n)
		p, err := New(&c, &kafka.Dialer{Timeout: 5 * time.Second}, pol, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		start, cpu0 := time.Now(), cpuTime()
		go func() { done <- p.Run(ctx) }()
		for counter(b, p, "bindwatch_audit_events_total", "applied") < hosts*perHost {
			time.Sleep(20 * time.Millisecond)
		}
		took, cpu := time.Since(start), cpuTime()-cpu0
		cancel()
		<-done
		b.ReportMetric(hosts*perHost/took.Seconds(), "events/s")
		// CPU time of the whole process (the kfake brokers in it too):
		// steadier than wall time on a machine others share.
		b.ReportMetric(hosts*perHost/cpu.Seconds(), "events/cpu-s")
		b.ReportMetric(counter(b, p, "bindwatch_audit_findings_total", "open"), "findings")
	}
}

// counter reads one labelled counter from the instance's registry.
func counter(b testing.TB, p *Processor, name, label string) float64 {
	fams, err := p.Metrics.Registry.Gather()
	if err != nil {
		b.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if label == "" {
				return m.GetCounter().GetValue()
			}
			for _, l := range m.GetLabel() {
				if l.GetValue() == label {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}
