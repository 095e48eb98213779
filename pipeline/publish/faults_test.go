package publish

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/bindwatch/bindwatch/internal/sink"
	"github.com/bindwatch/bindwatch/internal/spool"
	"github.com/bindwatch/bindwatch/pipeline/encode"
	"github.com/bindwatch/bindwatch/pipeline/record"
	"github.com/bindwatch/bindwatch/test/kafkatest"
	"github.com/bindwatch/bindwatch/test/testenv"
)

// seqBatch is an encoded batch of n events numbered from first: each value
// starts with its number (big endian) and is size bytes long. Its delivery
// token is the number after its last event, as if each took one byte of ring.
func seqBatch(first uint64, n, size int) encode.Batch {
	b := encode.Batch{Ack: record.Ack(first + uint64(n))}
	now := time.Now()
	for i := range n {
		v := make([]byte, size)
		binary.BigEndian.PutUint64(v, first+uint64(i))
		b.Values = append(b.Values, v)
		b.Times = append(b.Times, now)
	}
	return b
}

func seqMsgs(first uint64, n, size int) []spool.Message {
	b := seqBatch(first, n, size)
	msgs := make([]spool.Message, n)
	for i, v := range b.Values {
		msgs[i] = spool.Message{Key: []byte("host"), Value: v}
	}
	return msgs
}

func seqOf(v []byte) uint64 { return binary.BigEndian.Uint64(v) }

// checkSeqs reads the topic (one partition) and checks that every number in
// 0..n-1 is there and that order holds: a number seen for the first time is
// above every number seen before. Duplicates (at least once) are allowed.
func checkSeqs(t *testing.T, c *kafkatest.Cluster, topic string, n int) {
	t.Helper()
	total := int(kafkatest.Count(t, c.Addrs, topic))
	msgs := kafkatest.ReadAll(t, c.Addrs, topic, total, 20*time.Second)
	seen := map[uint64]bool{}
	var high uint64
	var disorder []uint64
	for i, m := range msgs {
		s := seqOf(m.Value)
		if !seen[s] && i > 0 && s < high && len(disorder) < 10 {
			disorder = append(disorder, s)
		}
		seen[s] = true
		high = max(high, s)
	}
	var missing []uint64
	for s := range uint64(n) {
		if !seen[s] {
			missing = append(missing, s)
		}
	}
	t.Logf("topic holds %d messages for %d events (%d duplicates), %d missing", total, n, total-len(seen), len(missing))
	if len(missing) > 0 {
		t.Errorf("%d of %d events missing, the first: %v", len(missing), n, missing[:min(10, len(missing))])
	}
	if len(disorder) > 0 {
		t.Errorf("order broken: events first seen after higher ones: %v", disorder)
	}
}

// stageRun is a Stage running in the background over a spool.
type stageRun struct {
	in        chan encode.Batch
	delivered atomic.Int64
	stats     StageStats
	spool     *spool.Spool
	cancel    context.CancelFunc
	done      chan error
}

func runStage(t *testing.T, p Sink, configure func(*Stage)) *stageRun {
	t.Helper()
	sp, err := spool.Open(t.TempDir(), spool.Options{MaxBytes: 256 << 20, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	r := &stageRun{in: make(chan encode.Batch, 4), spool: sp, done: make(chan error, 1)}
	s := &Stage{
		Sink: p, Spool: sp, Key: []byte("host"), ShutdownTimeout: 5 * time.Second,
		Stats: &r.stats, Logger: quiet, MinBackoff: 50 * time.Millisecond, MaxBackoff: 500 * time.Millisecond,
		// Tokens come in order: the latest says how many are accounted for.
		Observer: observed{delivered: func(a record.Ack) { r.delivered.Store(int64(a)) }},
	}
	if configure != nil {
		configure(s)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- s.Run(ctx, r.in) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop closes the input and waits for the stage; idempotent.
func (r *stageRun) stop(t *testing.T) {
	t.Helper()
	if r.in == nil {
		return
	}
	close(r.in)
	r.in = nil
	r.cancel()
	select {
	case <-r.done:
	case <-time.After(20 * time.Second):
		t.Error("the stage did not stop within 20s")
	}
	r.spool.Close()
}

// TestOutageStartSpoolsLateWrites (issue item 1): the brokers go away under
// load. The stage must move to the spool within about a second, not after
// kafka-go's whole retry budget (about 7 s), and keep taking batches and
// freeing their ring space meanwhile; after the brokers return, every event
// is on the topic in order.
func TestOutageStartSpoolsLateWrites(t *testing.T) {
	const topic = "late"
	c := kafkatest.Start(t, kafkatest.Options{Topic: topic, Partitions: 1, DataDir: t.TempDir()})
	p := newPublisher(t, Config{Brokers: c.Addrs, Topic: topic, BatchTimeout: 5 * time.Millisecond, WriteTimeout: 10 * time.Second})
	r := runStage(t, p, nil)

	const size, perBatch = 250, 500
	r.in <- seqBatch(0, perBatch, size)
	testenv.Eventually(t, "the first batch published", 10*time.Second, func() bool { return r.stats.Published.Load() == perBatch })

	c.Stop()
	const batches = 60 // 30 000 events, as fast as the stage takes them
	began := time.Now()
	for i := 1; i <= batches; i++ {
		r.in <- seqBatch(uint64(i*perBatch), perBatch, size)
	}
	taken := time.Since(began)
	testenv.Eventually(t, "every batch accounted for", 30*time.Second, func() bool {
		return r.delivered.Load() == (batches+1)*perBatch
	})
	freed := time.Since(began)
	t.Logf("with the brokers down: %d batches taken in %v, all accounted for (ring space freed) after %v; spooled %d",
		batches, taken.Round(time.Millisecond), freed.Round(time.Millisecond), r.stats.Spooled.Load())
	if freed > 3*time.Second {
		t.Errorf("the stage took %v to account for %d batches with the brokers down: it waited for the write to fail instead of spooling a late one", freed, batches)
	}

	c.Restart(t)
	testenv.Eventually(t, "the spool replayed", 60*time.Second, func() bool { n, _ := r.spool.Len(); return n == 0 })
	r.stop(t)
	checkSeqs(t, c, topic, (batches+1)*perBatch)
}

// TestBatchTooLargeIsSplit (issue item 2): a broker whose max.message.bytes
// is below a batch's size answers MESSAGE_TOO_LARGE for the record batch,
// not for its messages. Publish splits the batch and retries; only a message
// over the limit by itself is rejected.
func TestBatchTooLargeIsSplit(t *testing.T) {
	const topic = "small-limit"
	c := kafkatest.Start(t, kafkatest.Options{Topic: topic, Partitions: 1,
		BrokerConfigs: map[string]string{"message.max.bytes": "50000"}})
	// Uncompressed: the brokers must see the batch's real size (zstd, the
	// default, packs these zero-filled values far below the limit).
	p := newPublisher(t, Config{Brokers: c.Addrs, Topic: topic, Compression: "none"})

	msgs := seqMsgs(0, 500, 250) // 125 kB in one record batch
	failed, err := p.Publish(t.Context(), msgs)
	if len(failed) != 0 {
		t.Fatalf("500 messages of 250 B under a 50 000-byte limit: %d failed: %v", len(failed), err)
	}

	// One message of 60 000 bytes among good ones: it alone is refused.
	msgs = seqMsgs(500, 20, 250)
	msgs[7].Value = make([]byte, 60_000)
	binary.BigEndian.PutUint64(msgs[7].Value, 507)
	failed, err = p.Publish(t.Context(), msgs)
	if !slices.Equal(failed, []int{7}) {
		t.Fatalf("failed %v, want [7] alone (error %v)", failed, err)
	}
	var perr *sink.Error
	if !errors.As(err, &perr) || !sink.Rejected(perr.Errs[0]) {
		t.Fatalf("error %v: want the oversized message rejected", err)
	}
	got := kafkatest.ReadAll(t, c.Addrs, topic, 519, 10*time.Second)
	for i, m := range got {
		want := uint64(i)
		if i >= 507 {
			want++
		}
		if s := seqOf(m.Value); s != want {
			t.Fatalf("message %d on the topic is event %d, want %d", i, s, want)
		}
	}
	if n := kafkatest.Count(t, c.Addrs, topic); n != 519 {
		t.Errorf("topic holds %d, want 519", n)
	}
}

// TestInvalidTimestampIsNotADrop (issue item 2): INVALID_TIMESTAMP says
// something about the time, not the event: it is retried with a new stamp,
// never counted as rejected.
func TestInvalidTimestampIsNotADrop(t *testing.T) {
	const topic = "timestamps"
	c := kafkatest.Start(t, kafkatest.Options{Topic: topic, Partitions: 1})
	p := newPublisher(t, Config{Brokers: c.Addrs, Topic: topic})
	c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: topic, Err: kerr.InvalidTimestamp})
	msgs := seqMsgs(0, 50, 100)
	failed, err := p.Publish(t.Context(), msgs)
	if err != nil {
		var perr *sink.Error
		if errors.As(err, &perr) {
			for _, e := range perr.Errs {
				if sink.Rejected(e) {
					t.Fatalf("INVALID_TIMESTAMP counted as a rejection, the event would be dropped: %v", e)
				}
			}
		}
		t.Fatalf("Publish: failed %d: %v; want it re-stamped and sent", len(failed), err)
	}
	checkSeqs(t, c, topic, 50)
}

// TestPartialFailureKeepsOrder (issue item 3): a pipeline batch larger than
// the producer's batch (batch_size raised by a reload) is written as two
// record batches; the first fails, the second would succeed. Everything
// from the first failed message on must be spooled, so the topic reads in
// order after the replay.
func TestPartialFailureKeepsOrder(t *testing.T) {
	const topic = "partial"
	c := kafkatest.Start(t, kafkatest.Options{Topic: topic, Partitions: 1})
	// The producer was sized for 500-event batches; the pipeline now sends 600.
	p := newPublisher(t, Config{Brokers: c.Addrs, Topic: topic, BatchSize: 500})
	c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: topic, Err: kerr.TopicAuthorizationFailed})

	failed, err := p.Publish(t.Context(), seqMsgs(0, 600, 100))
	t.Logf("Publish of 600 with the first record batch refused: %d failed: %v", len(failed), err)
	if len(failed) == 0 || failed[0] != 0 || len(failed) != 600-failed[0] {
		t.Errorf("failed %d messages from %v: want every message from the first failed one on", len(failed), failed[:min(3, len(failed))])
	}

	// Through the stage: what follows the failure waits behind it.
	if err := c.CreateTopic("partial-2", 1, nil); err != nil {
		t.Fatal(err)
	}
	c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: "partial-2", Err: kerr.TopicAuthorizationFailed})
	q := newPublisher(t, Config{Brokers: c.Addrs, Topic: "partial-2", BatchSize: 500})
	r := runStage(t, q, nil)
	r.in <- seqBatch(0, 600, 100)
	r.in <- seqBatch(600, 100, 100)
	testenv.Eventually(t, "delivered", 30*time.Second, func() bool {
		n, _ := r.spool.Len()
		return r.delivered.Load() == 700 && n == 0
	})
	r.stop(t)
	checkSeqs(t, c, "partial-2", 700)
}

// TestStuckReplayIsReported (issue item 5): when the replayer cannot read
// the spool (here a segment replaced by a directory: it opens, reads fail),
// it must say so, so that health turns red, instead of retrying silently.
func TestStuckReplayIsReported(t *testing.T) {
	const topic = "stuck"
	c := kafkatest.Start(t, kafkatest.Options{Topic: topic, Partitions: 1})
	p := newPublisher(t, Config{Brokers: c.Addrs, Topic: topic})
	dir := t.TempDir()
	sp, err := spool.Open(dir, spool.Options{MaxBytes: 1 << 20, SegmentBytes: 1, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	for i := range 3 {
		b := seqBatch(uint64(10*i), 10, 100)
		msgs := make([]spool.Message, len(b.Values))
		for j, v := range b.Values {
			msgs[j] = spool.Message{Key: []byte("host"), Value: v}
		}
		if err := sp.Append(msgs); err != nil {
			t.Fatal(err)
		}
	}
	segs, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	if len(segs) != 3 {
		t.Fatalf("segments %v, want 3", segs)
	}
	if err := os.Remove(segs[1]); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(segs[1], 0o700); err != nil {
		t.Fatal(err)
	}
	var last atomic.Value
	var stats StageStats
	s := &Stage{Sink: p, Spool: sp, Key: []byte("host"), ShutdownTimeout: time.Second, Stats: &stats, Logger: quiet,
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond,
		Observer: observed{replay: func(err error) { last.Store(fmt.Sprint(err)) }}}
	in := make(chan encode.Batch)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, in) }()
	defer func() { close(in); cancel(); <-done }()
	testenv.Eventually(t, "the stuck replay reported", 10*time.Second, func() bool {
		v, _ := last.Load().(string)
		return strings.Contains(v, "is a directory")
	})
	t.Logf("reported: %v (replayed %d before it)", last.Load(), stats.Replayed.Load())
	if stats.Replayed.Load() != 10 {
		t.Errorf("replayed %d messages, want the 10 before the bad segment", stats.Replayed.Load())
	}
}
