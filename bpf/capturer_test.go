package bpf

import (
	"errors"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bindwatch/bindwatch/test/testenv"
)

// testHooks are the hooks the native tests exercise: BINDWATCH_TEST_HOOKS
// (the VM harness sets fexit,kprobe,tracepoint), else whatever auto picks.
func testHooks(t testing.TB) []Hook {
	t.Helper()
	v := os.Getenv("BINDWATCH_TEST_HOOKS")
	if v == "" {
		return []Hook{HookAuto}
	}
	var hooks []Hook
	for _, s := range strings.Split(v, ",") {
		h, err := ParseHook(s)
		if err != nil {
			t.Fatalf("BINDWATCH_TEST_HOOKS: %v", err)
		}
		hooks = append(hooks, h)
	}
	return hooks
}

// capturer is a loaded probe plus its reader, for tests that bind and then
// look at what the kernel reported.
type capturer struct {
	t     *testing.T
	probe *Probe
	rd    *Reader
}

func newCapturer(t *testing.T, hook Hook, f Filter) *capturer {
	t.Helper()
	return loadCapturer(t, Options{Hook: hook, Filter: f})
}

// loadCapturer is newCapturer with every load option; both are closed when
// the test ends.
func loadCapturer(t *testing.T, o Options) *capturer {
	t.Helper()
	testenv.RequireRoot(t)
	if o.Hook == "" {
		o.Hook = HookAuto
	}
	hook := o.Hook
	p, err := Load(o)
	if err != nil {
		t.Fatalf("loading hook %s: %v", hook, err)
	}
	t.Cleanup(func() { p.Close() })
	if hook != HookAuto && p.Hook() != hook {
		t.Fatalf("asked for hook %s, got %s", hook, p.Hook())
	}
	rd, err := p.NewReader()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rd.Close() })
	return &capturer{t: t, probe: p, rd: rd}
}

func (c *capturer) seq() uint64 {
	c.t.Helper()
	n, err := c.probe.NextSeq()
	if err != nil {
		c.t.Fatal(err)
	}
	return n
}

// during runs fn and returns exactly the events the kernel numbered while it
// ran. The sequence counter says how many passed the filters, so filtered-out
// binds are proven absent without sleeping.
func (c *capturer) during(fn func()) []Event {
	c.t.Helper()
	before := c.seq()
	fn()
	after := c.seq()
	return c.read(before, after)
}

// read returns the events numbered [from, to), skipping earlier leftovers.
func (c *capturer) read(from, to uint64) []Event {
	c.t.Helper()
	var out []Event
	deadline := time.Now().Add(5 * time.Second)
	for uint64(len(out)) < to-from {
		c.rd.SetDeadline(deadline)
		var ev Event
		if err := c.rd.Read(&ev); err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				c.t.Fatalf("read %d of %d events numbered %d..%d before the deadline", len(out), to-from, from, to-1)
			}
			c.t.Fatalf("reading events: %v", err)
		}
		c.rd.CommitAll()
		if ev.Seq < from {
			continue
		}
		if ev.Seq >= to {
			c.t.Fatalf("event seq %d beyond the expected range %d..%d: %+v", ev.Seq, from, to-1, ev)
		}
		out = append(out, ev)
	}
	return out
}

// one runs fn and returns the single event it must produce.
func (c *capturer) one(fn func()) Event {
	c.t.Helper()
	evs := c.during(fn)
	if len(evs) != 1 {
		c.t.Fatalf("want exactly 1 event, got %d: %+v", len(evs), evs)
	}
	return evs[0]
}

// none runs fn and fails if the kernel reported anything for it.
func (c *capturer) none(fn func()) {
	c.t.Helper()
	if evs := c.during(fn); len(evs) != 0 {
		c.t.Fatalf("want no events, got %d: %+v", len(evs), evs)
	}
}

// loadDrained loads o with a reader that reads and drops every record on
// another thread, as snoop reads into a pipe; done detaches it.
func loadDrained(tb testing.TB, o Options) (p *Probe, done func()) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	p, err := Load(o)
	if err != nil {
		tb.Fatalf("loading hook %s: %v", o.Hook, err)
	}
	rd, err := p.NewReader()
	if err != nil {
		p.Close()
		tb.Fatal(err)
	}
	var drained sync.WaitGroup
	drained.Go(func() {
		var ev Event
		for {
			if err := rd.Read(&ev); err != nil {
				if errors.Is(err, os.ErrDeadlineExceeded) {
					continue
				}
				return
			}
			rd.CommitAll()
		}
	})
	return p, func() {
		rd.Close()
		drained.Wait()
		p.Close()
	}
}
