package pipeline

import (
	"slices"
	"testing"
	"time"

	"github.com/bindwatch/bindwatch/internal/kafkatest"
	"github.com/bindwatch/bindwatch/internal/testenv"
)

// TestReloadWhileRunning reloads while Run starts its stages and the
// inventory reads the configuration: under -race it fails if the running
// configuration is swapped unsynchronised. Live keys apply; a changed key
// that is not live is named and keeps its running value.
func TestReloadWhileRunning(t *testing.T) {
	testenv.RequireRoot(t)
	const topic = "reload"
	cluster := kafkatest.Start(t, kafkatest.Options{Topic: topic})
	cfg := testConfig(t, cluster.Addrs, topic)
	agent := runAgent(t, &cfg, discardLogger())
	for i := range 50 {
		next := cfg
		next.Pipeline.BatchSize = 100 + i
		next.Pipeline.BatchTimeout = time.Duration(10+i) * time.Millisecond
		next.Kafka.WriteTimeout = 5 * time.Second // not live
		ignored, err := agent.Reload(&next)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(ignored, []string{"kafka.write_timeout"}) {
			t.Fatalf("reload %d: ignored %v, want [kafka.write_timeout]", i, ignored)
		}
	}
	running := agent.current()
	if running.Pipeline.BatchSize != 149 || running.Kafka.WriteTimeout != cfg.Kafka.WriteTimeout {
		t.Errorf("running batch size %d, write timeout %v; want 149 and the unchanged %v",
			running.Pipeline.BatchSize, running.Kafka.WriteTimeout, cfg.Kafka.WriteTimeout)
	}
	if err := bindOnce(); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "the bind after the reloads published", 20*time.Second, func() bool { return agent.Stats().Publish.Published.Load() >= 1 })
	agent.stop(t)
}
