package stream

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/bindwatch/bindwatch/audit/findings"
	"github.com/bindwatch/bindwatch/audit/record"
	"github.com/bindwatch/bindwatch/test/kafkatest"
)

// TestRecordToFindingLatency measures, for a sealing host, the time from
// writing a batch with a new unexpected listener (and its seal) to Kafka
// to reading its finding from the findings topic: the audit's part of
// bind-to-finding (the agent's part is BenchmarkBindToAck).
func TestRecordToFindingLatency(t *testing.T) {
	if testing.Short() {
		t.Skip("SKIP: a measurement")
	}
	cl := kafkatest.Start(t, kafkatest.Options{Topic: "bindwatch.bind-events", Partitions: 3})
	cfg := testConfig(cl.Addrs)
	prod := newProducer(t, cl.Addrs, cfg.EventsTopic)
	startInstance(t, cfg)
	h := newSealingHost(t, "latency-host", "lat-1")
	codec, _ := record.NewCodec()
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: cl.Addrs, Topic: cfg.FindingsTopic, Partition: partitionOf([]byte(h.id), 3),
		MinBytes: 1, MaxBytes: 1 << 20, MaxWait: 10 * time.Millisecond})
	defer r.Close()
	var lat []time.Duration
	for i := range 20 {
		port := int32(20000 + i)
		want := findings.ListenerID(h.id, ptrTrue(), 4026531840, "TCP", "0.0.0.0", port)
		start := time.Now()
		prod.write(h.batch(t, prod.enc, h.ev("listen", "/usr/bin/nc", "TCP", "0.0.0.0", port, int64(i+1)))...)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		for {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				cancel()
				t.Fatalf("finding for port %d: %v", port, err)
			}
			if f, err := codec.DecodeFinding(m.Value); err == nil && f.ID == want {
				break
			}
		}
		cancel()
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	t.Logf("record written → finding read, %d sealed batches: p50 %v, p90 %v, max %v (audit.batch_timeout %v)",
		len(lat), lat[len(lat)/2].Round(time.Millisecond), lat[len(lat)*9/10].Round(time.Millisecond), lat[len(lat)-1].Round(time.Millisecond), cfg.BatchTimeout)
}
