package publish

import (
	"sync"
	"testing"
	"time"

	"github.com/bindwatch/bindwatch/internal/spool"
	"github.com/bindwatch/bindwatch/pipeline/record"
	"github.com/bindwatch/bindwatch/test/sinktest"
	"github.com/bindwatch/bindwatch/test/testenv"
)

// counts is what a counting Observer was told.
type counts struct {
	taken, wrote, acked     int
	results, failed, replay int
	delivered               record.Ack
}

// counting is an Observer that counts what it is told.
type counting struct {
	mu sync.Mutex
	c  counts
}

func (o *counting) Taken(n int)                { o.mu.Lock(); o.c.taken += n; o.mu.Unlock() }
func (o *counting) Wrote(time.Duration)        { o.mu.Lock(); o.c.wrote++; o.mu.Unlock() }
func (o *counting) Acknowledged(time.Duration) { o.mu.Lock(); o.c.acked++; o.mu.Unlock() }
func (o *counting) Replay(error)               { o.mu.Lock(); o.c.replay++; o.mu.Unlock() }
func (o *counting) Delivered(a record.Ack)     { o.mu.Lock(); o.c.delivered = a; o.mu.Unlock() }

func (o *counting) Result(err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.c.results++
	if err != nil {
		o.c.failed++
	}
}

func (o *counting) get() counts {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.c
}

// TestStageOnFakeSink runs the stage against the in-memory sink: an outage
// spools what follows, the replay delivers it in order once the sink is
// back, rejected messages are dropped and counted, and the Observer hears
// of every batch.
func TestStageOnFakeSink(t *testing.T) {
	fake := &sinktest.Sink{}
	fake.RejectIf(func(m spool.Message) bool { return seqOf(m.Value) == 3 })
	obs := &counting{}
	r := runStage(t, fake, func(s *Stage) { s.Observer = obs })

	r.in <- seqBatch(0, 10, 16) // 3 is rejected
	testenv.Eventually(t, "the first batch", 5*time.Second, func() bool { return obs.get().delivered == 10 })
	fake.SetDown(true)
	r.in <- seqBatch(10, 10, 16)
	r.in <- seqBatch(20, 10, 16)
	testenv.Eventually(t, "spooled while down", 5*time.Second, func() bool { return obs.get().delivered == 30 })
	if r.stats.Spooled.Load() == 0 {
		t.Errorf("nothing spooled while the sink was down")
	}
	fake.SetDown(false)
	testenv.Eventually(t, "the spool replayed", 10*time.Second, func() bool { n, _ := r.spool.Len(); return n == 0 })
	r.stop(t)

	var got []uint64
	for _, m := range fake.Taken() {
		got = append(got, seqOf(m.Value))
	}
	var want []uint64
	for i := range uint64(30) {
		if i != 3 {
			want = append(want, i)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("sink took %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("sink took %v, want %v (in order)", got, want)
		}
	}
	if r.stats.Rejected.Load() != 1 {
		t.Errorf("rejected %d, want 1", r.stats.Rejected.Load())
	}
	c := obs.get()
	if c.taken != 30 || c.acked != 29 || c.wrote == 0 || c.failed == 0 || c.replay == 0 {
		t.Errorf("observer saw %+v", c)
	}
}
