package pipeline

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/bindwatch/bindwatch/test/kafkatest"
	"github.com/bindwatch/bindwatch/test/testenv"
)

// TestShutdownOneDeadline (issue item 7): with Kafka hung (connections
// accepted, produce requests never answered) and a write in flight, stopping
// must take shutdown.timeout in all, not shutdown.timeout to drain and then
// shutdown.timeout again for the producer to close.
func TestShutdownOneDeadline(t *testing.T) {
	testenv.RequireRoot(t)
	const topic = "hung"
	cluster := kafkatest.Start(t, kafkatest.Options{Brokers: 1, Topic: topic, Partitions: 1})
	cluster.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		cluster.KeepControl()
		return nil, nil, true // never answered
	})
	cfg := testConfig(t, cluster.Addrs, topic)
	cfg.Shutdown.Timeout = 2 * time.Second
	cfg.Kafka.SpoolAfter = time.Minute // the write stays in flight until the deadline

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Not the test's log: the abandoned writer goes on logging after the
	// test ends.
	agent, err := Start(ctx, &cfg, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	runDone := make(chan error, 1)
	go func() { runDone <- agent.Run(ctx) }()
	const n = 100
	for range n {
		if err := bindOnce(); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(300 * time.Millisecond) // read, batched, one write in flight

	began := time.Now()
	cancel()
	if err := <-runDone; err != nil {
		t.Fatal(err)
	}
	ran := time.Since(began)
	// As runAgent does: Close gets a deadline of its own.
	closeCtx, closeCancel := context.WithTimeout(context.Background(), cfg.Shutdown.Timeout)
	closeErr := agent.Close(closeCtx)
	closeCancel()
	took := time.Since(began)
	spooled := agent.Stats().Publish.Spooled.Load()
	t.Logf("stop took %v (Run %v, then Close: %v) with shutdown.timeout %v; %d events spooled",
		took.Round(time.Millisecond), ran.Round(time.Millisecond), closeErr, cfg.Shutdown.Timeout, spooled)
	if took > cfg.Shutdown.Timeout+time.Second {
		t.Errorf("stopping took %v, past shutdown.timeout %v", took, cfg.Shutdown.Timeout)
	}
	if spooled < n {
		t.Errorf("%d events spooled at the deadline, want at least %d", spooled, n)
	}
}
