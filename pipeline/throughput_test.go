package pipeline

import (
	"context"
	"crypto/ed25519"
	"net/netip"
	"os"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bindwatch/bindwatch/bpf"
	"github.com/bindwatch/bindwatch/internal/config"
	"github.com/bindwatch/bindwatch/pipeline/encode"
	"github.com/bindwatch/bindwatch/pipeline/record"
	"github.com/bindwatch/bindwatch/test/kafkatest"
	"github.com/bindwatch/bindwatch/test/testenv"
)

// BenchmarkPipelineThroughput measures decoded events to acknowledged Kafka
// writes: enrich, batch, encode and publish at the default settings, against
// a 3-broker kfake cluster in this process (which shares the CPUs). The
// capture stage is left out: it is measured with the kernel in the loadgen
// runs.
//
// The sealed runs sign each batch as the agent does (one Ed25519 signature
// and a SHA-256 per record): compare them with the plain runs side by side.
func BenchmarkPipelineThroughput(b *testing.B) {
	for _, codec := range []config.Compression{config.CompressionZstd, config.CompressionLZ4, config.CompressionNone} {
		b.Run(string(codec), func(b *testing.B) { benchmarkPipeline(b, codec, false) })
		b.Run(string(codec)+"-sealed", func(b *testing.B) { benchmarkPipeline(b, codec, true) })
	}
}

func benchmarkPipeline(b *testing.B, codec config.Compression, sealed bool) {
	cluster := kafkatest.Start(b, kafkatest.Options{Brokers: 3, Topic: "bench", Partitions: 3})
	cfg := config.Defaults()
	cfg.Kafka.Brokers, cfg.Kafka.Topic, cfg.Kafka.Compression = cluster.Addrs, "bench", codec
	// What is measured is Kafka's acknowledgement: on a loaded machine a
	// write may take more than the default second, and a backlog over
	// the queue size spools too: neither would count.
	cfg.Kafka.SpoolAfter = time.Minute
	cfg.Pipeline.QueueSize = max(cfg.Pipeline.QueueSize, b.N+1)
	pub, err := openSink(&cfg, discardLogger())
	if err != nil {
		b.Fatal(err)
	}
	defer pub.Close(context.Background())
	ev := benchEvent(b)
	var stats Stats
	var sealer []*encode.Sealer
	if sealed {
		_, key, _ := ed25519.GenerateKey(nil)
		var next atomic.Uint64
		next.Store(1 << 40) // above the benchmark's seqs
		sealer = append(sealer, &encode.Sealer{Key: key, HostID: "bench-host", BootID: "bench-boot",
			Reserve: func(n uint64) (uint64, error) { return next.Add(n) - n, nil }, Announce: 30 * time.Second})
	}
	events, wait := runStages(b, cfg, pub, &stats, sealer...)

	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		ev.Seq = uint64(i)
		ev.BootNS += 1000
		events <- record.Raw{Event: ev, Ack: record.Ack(i + 1)}
	}
	close(events)
	if err := wait(); err != nil {
		b.Fatal(err)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	extra := uint64(0)
	if sealed {
		extra = sealer[0].Seals.Load() + 1 // the seals and the host key
	}
	if got := stats.Publish.Published.Load(); got != uint64(b.N)+extra {
		b.Fatalf("published %d of %d", got, uint64(b.N)+extra)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
}

// benchEvent is a successful IPv4 TCP bind by this process.
func benchEvent(b testing.TB) bpf.Event {
	ev := bpf.Event{Kind: bpf.KindBind, PID: uint32(os.Getpid()), TID: uint32(os.Getpid()), PPID: uint32(os.Getppid()),
		Protocol: bpf.ProtoTCP, Family: bpf.AFInet, ReqFamily: bpf.AFInet, Port: 8080, ReqPort: 8080,
		Opts: bpf.OptReuseAddr, Reuse: 1, CgroupID: 1, MntNS: 4026531840, NetNS: 4026531992}
	copy(ev.Addr[:], netip.MustParseAddr("10.1.2.3").AsSlice())
	copy(ev.ReqAddr[:], netip.MustParseAddr("10.1.2.3").AsSlice())
	copy(ev.Comm[:], "nginx")
	return ev
}

// BenchmarkBindToAck measures what DESIGN's latency target is about: from a
// real bind() to Kafka's acknowledgement of its event, through the whole
// agent (BPF included) at the default settings, binds arriving at a steady
// 2000/s. It reports the 50th, 99th and worst latency.
func BenchmarkBindToAck(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("SKIP: needs root to load BPF programs")
	}
	cluster := kafkatest.Start(b, kafkatest.Options{Brokers: 3, Topic: "latency", Partitions: 3})
	cfg := testConfig(b, cluster.Addrs, "latency")
	latencies := make(chan time.Duration, 1<<20)
	observe := func(s float64) { latencies <- time.Duration(s * float64(time.Second)) }
	agent := runAgentObserved(b, &cfg, observe)

	b.ResetTimer()
	const rate = 2000
	tick := time.NewTicker(time.Second / rate)
	for i := 0; i < b.N; i++ {
		<-tick.C
		if err := bindOnce(); err != nil {
			b.Fatal(err)
		}
	}
	tick.Stop()
	testenv.Eventually(b, "b.N events published", 20*time.Second, func() bool { return agent.Stats().Publish.Published.Load() >= uint64(b.N) })
	b.StopTimer()
	agent.stop(b)
	close(latencies)
	var all []time.Duration
	for d := range latencies {
		all = append(all, d)
	}
	slices.Sort(all)
	q := func(p float64) float64 { return float64(all[int(p*float64(len(all)-1))].Microseconds()) / 1000 }
	b.ReportMetric(q(0.5), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
	b.ReportMetric(q(1), "max-ms")
}
