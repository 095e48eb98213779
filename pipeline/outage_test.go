package pipeline

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/bindwatch/bindwatch/schemas/codec"
	"github.com/bindwatch/bindwatch/test/kafkatest"
	"github.com/bindwatch/bindwatch/test/testenv"
)

// TestBrokerOutage: under a steady bind load the whole Kafka cluster goes
// away for several seconds and comes back on the same ports with its data
// (kfake's DataDir). Events meanwhile go to the spool and are replayed;
// every event must arrive, told apart by (host id, boot id, seq).
func TestBrokerOutage(t *testing.T) {
	testenv.RequireRoot(t)
	const topic = "outage"
	cluster := kafkatest.Start(t, kafkatest.Options{Brokers: 3, Topic: topic, Partitions: 3, DataDir: t.TempDir()})

	cfg := testConfig(t, cluster.Addrs, topic)
	cfg.Kafka.WriteTimeout = 2 * time.Second // fail over to the spool sooner
	agent := runAgent(t, &cfg, testLogger(t))

	// 500 binds a second for 9 s; the cluster is down from 2 s to 6 s.
	firstSeq, err := agent.Probe().NextSeq()
	if err != nil {
		t.Fatal(err)
	}
	const rate, total = 500, 4500
	tick := time.NewTicker(time.Second / rate)
	defer tick.Stop()
	sawSpool := false
	for i := range total {
		<-tick.C
		switch i {
		case 2 * rate:
			cluster.Stop()
			t.Logf("cluster stopped after %d binds", i)
		case 6 * rate:
			cluster.Restart(t)
			t.Logf("cluster restarted after %d binds", i)
		}
		if err := bindOnce(); err != nil {
			t.Fatal(err)
		}
		if agent.Stats().Publish.Spooled.Load() > 0 {
			sawSpool = true
		}
	}
	testenv.Eventually(t, "the spool drained and every event published", 60*time.Second, func() bool {
		n, _ := agent.spool.Len()
		return n == 0 && agent.Stats().Publish.Published.Load() >= total
	})
	agent.stop(t)

	s := agent.Stats()
	t.Logf("published %d, spooled %d, replayed %d, failed writes %d, queue waits %d",
		s.Publish.Published.Load(), s.Publish.Spooled.Load(), s.Publish.Replayed.Load(), s.Publish.Failed.Load(), s.Capture.Waited.Load())
	if !sawSpool || s.Publish.Spooled.Load() == 0 || s.Publish.Replayed.Load() == 0 {
		t.Fatalf("the outage did not go through the spool: spooled %d, replayed %d", s.Publish.Spooled.Load(), s.Publish.Replayed.Load())
	}

	// The topic can hold more than Published: a write that timed out may
	// still land later (kafka-go retries in the background) after its
	// messages were spooled. Read all of it.
	seqs := topicSeqs(t, cluster.Addrs, topic, int(kafkatest.Count(t, cluster.Addrs, topic)))
	missing := missingSeqs(seqs, firstSeq, firstSeq+total-1)
	if len(missing) > 0 {
		t.Fatalf("%d of %d events missing; the first, counted from the test's first bind: %v", len(missing), total, relative(missing[:min(10, len(missing))], firstSeq))
	}
	t.Logf("all %d events arrived (%d messages read, duplicates allowed)", total, len(seqs))
}

// topicSeqs reads n messages and returns the seq of each, decoded with our
// decoder (python3-avro checks the bytes in the end-to-end test).
func topicSeqs(t *testing.T, brokers []string, topic string, n int) []uint64 {
	t.Helper()
	dec, err := codec.NewDecoder("")
	if err != nil {
		t.Fatal(err)
	}
	var seqs []uint64
	for _, m := range kafkatest.ReadAll(t, brokers, topic, n, 30*time.Second) {
		rec, err := dec.Decode(context.Background(), m.Value)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := rec.MarshalJSON()
		var v struct {
			Seq uint64 `json:"seq"`
		}
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, v.Seq)
	}
	return seqs
}

// missingSeqs lists the numbers in first..last that seqs lacks.
func missingSeqs(seqs []uint64, first, last uint64) []uint64 {
	slices.Sort(seqs)
	seqs = slices.Compact(seqs)
	var missing []uint64
	i := 0
	for want := first; want <= last; want++ {
		for i < len(seqs) && seqs[i] < want {
			i++
		}
		if i == len(seqs) || seqs[i] != want {
			missing = append(missing, want)
		}
	}
	return missing
}

func relative(seqs []uint64, base uint64) []uint64 {
	out := make([]uint64, len(seqs))
	for i, s := range seqs {
		out[i] = s - base
	}
	return out
}

// TestShutdownWithKafkaDown: SIGTERM while Kafka is unreachable must not
// block past the shutdown deadline; what could not be published is spooled
// and the next agent, with Kafka back, publishes it.
func TestShutdownWithKafkaDown(t *testing.T) {
	testenv.RequireRoot(t)
	const topic = "shutdown"
	cluster := kafkatest.Start(t, kafkatest.Options{Brokers: 3, Topic: topic, Partitions: 3, DataDir: t.TempDir()})
	cfg := testConfig(t, cluster.Addrs, topic)
	cfg.Shutdown.Timeout = 2 * time.Second

	ctx, cancel := context.WithCancel(context.Background())
	agent, err := Start(ctx, &cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	first, _ := agent.Probe().NextSeq()
	runDone := make(chan error, 1)
	go func() { runDone <- agent.Run(ctx) }()
	cluster.Stop()
	const n = 300
	for range n {
		if err := bindOnce(); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(100 * time.Millisecond) // read and batched, not deliverable
	began := time.Now()
	cancel()
	if err := <-runDone; err != nil {
		t.Fatal(err)
	}
	closeCtx, closeCancel := context.WithTimeout(context.Background(), cfg.Shutdown.Timeout)
	agent.Close(closeCtx)
	closeCancel()
	took := time.Since(began)
	spooled := agent.Stats().Publish.Spooled.Load()
	t.Logf("shutdown with Kafka down took %v (deadline %v twice: flush, then the writer), %d events spooled", took, cfg.Shutdown.Timeout, spooled)
	if took > 2*cfg.Shutdown.Timeout+time.Second {
		t.Fatalf("shutdown took %v, past its deadlines", took)
	}
	// At least ours: anything else this process bound is reported too.
	if spooled < n {
		t.Fatalf("%d events spooled at shutdown, want at least %d", spooled, n)
	}

	// Kafka is back: the next agent publishes the spool.
	cluster.Restart(t)
	next := runAgent(t, &cfg, testLogger(t))
	testenv.Eventually(t, "the spooled events replayed", 30*time.Second, func() bool { return next.Stats().Publish.Replayed.Load() >= n })
	next.stop(t)
	seqs := topicSeqs(t, cluster.Addrs, topic, int(kafkatest.Count(t, cluster.Addrs, topic)))
	if missing := missingSeqs(seqs, first, first+n-1); len(missing) > 0 {
		t.Fatalf("%d of %d events missing after the replay", len(missing), n)
	}
}

// TestOutageStartBurst (issue item 1, as reported): the cluster is down and
// 100 000 binds come as fast as this process can make them. Waiting out the
// producer's retries before spooling lost about a third of them (the queue
// overflowed); now the first write is late after kafka.spool_after and
// everything goes to the spool, then to Kafka once it is back.
func TestOutageStartBurst(t *testing.T) {
	testenv.RequireRoot(t)
	const topic = "burst"
	cluster := kafkatest.Start(t, kafkatest.Options{Brokers: 1, Topic: topic, Partitions: 1, DataDir: t.TempDir()})
	cfg := testConfig(t, cluster.Addrs, topic)
	agent := runAgent(t, &cfg, discardLogger())
	first, err := agent.Probe().NextSeq()
	if err != nil {
		t.Fatal(err)
	}
	// Kafka was up a moment ago: the producer knows the partition leaders.
	const warm = 1000
	for range warm {
		if err := bindOnce(); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Eventually(t, "the warm-up published", 10*time.Second, func() bool { return agent.Stats().Publish.Published.Load() >= warm })
	cluster.Stop()
	const total = 100_000 + warm
	began := time.Now()
	for range total - warm {
		if err := bindOnce(); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d binds in %v with the cluster down", total-warm, time.Since(began).Round(time.Millisecond))
	// Read them all, unless the kernel dropped some (a full ring).
	for end := time.Now().Add(20 * time.Second); agent.Stats().Capture.Read.Load() < total && time.Now().Before(end); {
		time.Sleep(10 * time.Millisecond)
	}
	var ringFull uint64
	if d, err := agent.Probe().Drops(); err == nil {
		ringFull = d.RingBufferFull
	}
	time.Sleep(2 * time.Second) // what the stage still holds goes to the spool
	cluster.Restart(t)
	testenv.Eventually(t, "the spool drained", 120*time.Second, func() bool {
		n, _ := agent.spool.Len()
		return n == 0
	})
	agent.stop(t)
	s := agent.Stats()
	t.Logf("ring buffer full %d, queue waits %d, spooled %d, replayed %d, published %d", ringFull, s.Capture.Waited.Load(),
		s.Publish.Spooled.Load(), s.Publish.Replayed.Load(), s.Publish.Published.Load())
	seqs := topicSeqs(t, cluster.Addrs, topic, int(kafkatest.Count(t, cluster.Addrs, topic)))
	if missing := missingSeqs(seqs, first, first+total-1); len(missing) > 0 {
		t.Fatalf("%d of %d events missing (queue waits %d); the first, from the test's first bind: %v",
			len(missing), total, s.Capture.Waited.Load(), relative(missing[:min(10, len(missing))], first))
	}
}
