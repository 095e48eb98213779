package pipeline

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/bindwatch/bindwatch/bpf"
	"github.com/bindwatch/bindwatch/test/kafkatest"
	"github.com/bindwatch/bindwatch/test/testenv"
)

// TestAgentReportsWhatHappenedWithoutIt: binds made between two pinned
// agents wait in the ring; the second agent says so (log and metrics),
// publishes them, and counts as its own drops only those after it started.
func TestAgentReportsWhatHappenedWithoutIt(t *testing.T) {
	testenv.RequireRoot(t)
	const topic = "lease"
	cluster := kafkatest.Start(t, kafkatest.Options{Brokers: 1, Topic: topic, Partitions: 1})
	cfg := testConfig(t, cluster.Addrs, topic)
	cfg.Capture.PinDir = filepath.Join("/sys/fs/bpf", fmt.Sprintf("bindwatch-lease-agent-%d", os.Getpid()))
	t.Cleanup(func() { bpf.RemovePins(cfg.Capture.PinDir) })
	// Capture is this process's: an agent's TCP metrics listener would add
	// its own listen or close record to the ring between the two agents,
	// whenever its bind or close falls outside a reader's life.
	cfg.Metrics.Listen = "unix:" + filepath.Join(t.TempDir(), "metrics.sock")

	first := runAgent(t, &cfg, discardLogger())
	first.stop(t)
	const between = 20
	for range between {
		if err := bindOnce(); err != nil {
			t.Fatal(err)
		}
	}
	second := runAgent(t, &cfg, discardLogger())
	l := second.Snapshot().Lease
	// Each bind is one record in the ring: its 8-byte header and the event.
	if want := uint64(between * (8 + bpf.EventSize)); l.WaitingBytes != want {
		t.Errorf("waiting at start %d bytes, want %d (%d records)", l.WaitingBytes, want, between)
	}
	if l.OrphanedSeconds != 0 || l.ExpiredSeconds != 0 {
		t.Errorf("lease: orphaned %v s, expired %v s; want 0 within capture.orphan_timeout", l.OrphanedSeconds, l.ExpiredSeconds)
	}
	testenv.Eventually(t, "the binds after the handover published", 15*time.Second, func() bool { return second.Stats().Publish.Published.Load() >= between })
	if d := second.Snapshot().Dropped; d["ring_buffer_full"] != 0 || d["orphaned"] != 0 {
		t.Errorf("own drops %v", d)
	}
}
