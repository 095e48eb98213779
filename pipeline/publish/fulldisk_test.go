package publish

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
	"golang.org/x/sys/unix"

	"github.com/bindwatch/bindwatch/internal/spool"
	"github.com/bindwatch/bindwatch/pipeline/encode"
	"github.com/bindwatch/bindwatch/pipeline/record"
	"github.com/bindwatch/bindwatch/test/kafkatest"
	"github.com/bindwatch/bindwatch/test/testenv"
)

// smallDisk mounts a tmpfs of size bytes on a new directory, unmounted at
// the end of the test.
func smallDisk(t *testing.T, size string) string {
	t.Helper()
	testenv.RequireRoot(t)
	dir := filepath.Join(t.TempDir(), "disk")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size="+size+",mode=0700"); err != nil {
		testenv.Unavailable(t, "cannot mount a tmpfs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	return dir
}

// TestFullDiskKeepsRefusedEvents (issue item 4): the disk under the spool is
// full while a backlog drains to a working Kafka. New batches queue behind
// the backlog, the spool refuses them with ENOSPC: they must reach Kafka
// directly, not be dropped with their ring space freed.
func TestFullDiskKeepsRefusedEvents(t *testing.T) {
	disk := smallDisk(t, "256k")
	const topic = "full-disk"
	c := kafkatest.Start(t, kafkatest.Options{Topic: topic, Partitions: 1})
	// Each produce takes 30 ms: the backlog takes seconds to drain.
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		c.SleepControl(func() { time.Sleep(30 * time.Millisecond) })
		return nil, nil, false
	})
	p := newPublisher(t, Config{Brokers: c.Addrs, Topic: topic})

	// The spool allows 64 MiB, the disk holds 256 KiB: fill the disk.
	sp, err := spool.Open(filepath.Join(disk, "spool"), spool.Options{MaxBytes: 64 << 20, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	const per, size = 10, 200
	var backlog uint64
	for {
		b := seqBatch(backlog, per, size)
		msgs := make([]spool.Message, per)
		for i, v := range b.Values {
			msgs[i] = spool.Message{Key: []byte("host"), Value: v, Time: b.Times[i]}
		}
		if err := sp.Append(msgs); err != nil {
			if !errors.Is(err, unix.ENOSPC) {
				t.Fatalf("filling the disk: %v", err)
			}
			break
		}
		backlog += per
	}
	droppedBefore := sp.Stats().Dropped()
	t.Logf("backlog of %d events fills the disk", backlog)

	var delivered atomic.Int64
	var stats StageStats
	in := make(chan encode.Batch, 4)
	s := &Stage{Sink: p, Spool: sp, Key: []byte("host"), ShutdownTimeout: 5 * time.Second,
		Stats: &stats, Logger: quiet, MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
		// Tokens come in order: the latest, less the backlog the batches
		// are numbered after, is how many fresh events are accounted for.
		Observer: observed{delivered: func(a record.Ack) { delivered.Store(int64(a) - int64(backlog)) }}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, in) }()

	const fresh = 1000 // while the backlog drains
	for i := uint64(0); i < fresh; i += 100 {
		in <- seqBatch(backlog+i, 100, size)
	}
	total := int(backlog) + fresh
	testenv.Eventually(t, "the spool drained", 60*time.Second, func() error {
		if n, _ := sp.Len(); n != 0 || delivered.Load() != fresh {
			return fmt.Errorf("spool holds %d batches, %d of %d fresh events accounted for", n, delivered.Load(), fresh)
		}
		return nil
	})
	close(in)
	cancel()
	<-done
	st := sp.Stats()
	t.Logf("fresh events: spooled %d, published %d, spool drops %v, lost %d", stats.Spooled.Load(), stats.Published.Load(),
		st.DroppedMessages, stats.Lost.Load())
	if d := st.Dropped() - droppedBefore; d != 0 {
		t.Errorf("the spool dropped %d fresh events (%v) while Kafka was up", d, st.DroppedMessages)
	}
	checkPresent(t, c, topic, total)
}

// checkPresent checks that every number in 0..n-1 is on the topic.
func checkPresent(t *testing.T, c *kafkatest.Cluster, topic string, n int) {
	t.Helper()
	total := int(kafkatest.Count(t, c.Addrs, topic))
	seen := map[uint64]bool{}
	for _, m := range kafkatest.ReadAll(t, c.Addrs, topic, total, 20*time.Second) {
		seen[seqOf(m.Value)] = true
	}
	var missing []uint64
	for s := range uint64(n) {
		if !seen[s] {
			missing = append(missing, s)
		}
	}
	if len(missing) > 0 {
		t.Errorf("%d of %d events missing, the first: %v", len(missing), n, missing[:min(10, len(missing))])
	}
}

// TestFullDiskAndKafkaDownKeepsRingSpace (issue item 4): at the shutdown
// deadline, a batch neither the full disk nor the absent Kafka took is
// lost to this agent, so its ring space (and that of every batch after
// it) must not be freed: the next agent reads those events again.
func TestFullDiskAndKafkaDownKeepsRingSpace(t *testing.T) {
	disk := smallDisk(t, "64k")
	const topic = "full-disk-down"
	c := kafkatest.Start(t, kafkatest.Options{Topic: topic, Partitions: 1})
	p := newPublisher(t, Config{Brokers: c.Addrs, Topic: topic, WriteTimeout: 500 * time.Millisecond})
	sp, err := spool.Open(filepath.Join(disk, "spool"), spool.Options{MaxBytes: 64 << 20, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	var backlog uint64
	for {
		b := seqBatch(backlog, 10, 200)
		msgs := make([]spool.Message, len(b.Values))
		for i, v := range b.Values {
			msgs[i] = spool.Message{Key: []byte("host"), Value: v}
		}
		if err := sp.Append(msgs); err != nil {
			break
		}
		backlog += 10
	}
	c.Stop()

	var delivered atomic.Int64
	var stats StageStats
	in := make(chan encode.Batch, 4)
	s := &Stage{Sink: p, Spool: sp, Key: []byte("host"), ShutdownTimeout: time.Second, LateAfter: 200 * time.Millisecond,
		Stats: &stats, Logger: quiet, MinBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond,
		// Tokens come in order: the latest, less the backlog the batches
		// are numbered after, is how many fresh events are accounted for.
		Observer: observed{delivered: func(a record.Ack) { delivered.Store(int64(a) - int64(backlog)) }}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, in) }()
	in <- seqBatch(backlog, 100, 200)
	in <- seqBatch(backlog+100, 100, 200)
	time.Sleep(500 * time.Millisecond)
	close(in)
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the stage did not stop within 10s of a 1s shutdown deadline")
	}
	t.Logf("delivered %d, lost %d, spool drops %v", delivered.Load(), stats.Lost.Load(), sp.Stats().DroppedMessages)
	if delivered.Load() != 0 {
		t.Errorf("ring space of %d events freed though neither Kafka nor the spool has them", delivered.Load())
	}
}
