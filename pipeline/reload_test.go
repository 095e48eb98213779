package pipeline

import (
	"slices"
	"testing"
	"time"

	"github.com/bindwatch/bindwatch/test/kafkatest"
	"github.com/bindwatch/bindwatch/test/testenv"
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
		next.Kafka.WriteTimeout = 5 * time.Second          // not live
		next.Capture.UIDBudget = cfg.Capture.UIDBudget + 7 // not live, though it rides in the kernel filter
		ignored, err := agent.Reload(&next)
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"capture.uid_budget", "kafka.write_timeout"}; !slices.Equal(ignored, want) {
			t.Fatalf("reload %d: ignored %v, want %v", i, ignored, want)
		}
	}
	running := agent.current()
	if running.Pipeline.BatchSize != 149 || running.Kafka.WriteTimeout != cfg.Kafka.WriteTimeout ||
		running.Capture.UIDBudget != cfg.Capture.UIDBudget {
		t.Errorf("running batch size %d, write timeout %v, uid budget %d; want 149 and the unchanged %v and %d",
			running.Pipeline.BatchSize, running.Kafka.WriteTimeout, running.Capture.UIDBudget, cfg.Kafka.WriteTimeout, cfg.Capture.UIDBudget)
	}
	if err := bindOnce(); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "the bind after the reloads published", 20*time.Second, func() bool { return agent.Stats().Publish.Published.Load() >= 1 })
	agent.stop(t)
}
