package stream

import (
	"context"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/bindwatch/bindwatch/audit/findings"
)

func TestBackoff(t *testing.T) {
	for _, jitter := range []float64{0, 0.5, 0.999} {
		b := backoff{min: 100 * time.Millisecond, max: 30 * time.Second, rand: func() float64 { return jitter }}
		var prev time.Duration
		for i := range 20 {
			d := b.next()
			if d < prev {
				t.Errorf("jitter %v: delay %d is %v, shorter than the one before, %v", jitter, i, d, prev)
			}
			if d < 50*time.Millisecond || d > 30*time.Second {
				t.Errorf("jitter %v: delay %d is %v, out of [50ms, 30s]", jitter, i, d)
			}
			if i >= 9 && d < 15*time.Second {
				t.Errorf("jitter %v: delay %d is %v, not at the cap", jitter, i, d)
			}
			prev = d
		}
		b.reset()
		if d := b.next(); d >= 100*time.Millisecond {
			t.Errorf("jitter %v: after reset %v", jitter, d)
		}
	}
	// Jitter spreads instances that failed together.
	b1, b2 := backoff{min: retryMin, max: retryMax}, backoff{min: retryMin, max: retryMax}
	same := 0
	for range 10 {
		if b1.next() == b2.next() {
			same++
		}
	}
	if same == 10 {
		t.Error("no jitter")
	}
}

// Issue 21, item 4: a registry that answers 503 six times is asked again
// after delays that grow (100 ms, doubling, with jitter; here the jitter
// is fixed and the sleeps recorded), in place: the partition is not
// rebuilt for each, nothing is committed past the message, and once the
// registry answers the record is judged.
func TestRegistryRetryBacksOff(t *testing.T) {
	cl, cfg, prod, refused := registryBehind503s(t, 6)

	p := newProcessor(t, cfg, testPolicy, io.Discard)
	var mu sync.Mutex
	var delays []time.Duration
	p.jitter = func() float64 { return 0.5 }
	p.sleep = func(ctx context.Context, d time.Duration) error {
		mu.Lock()
		delays = append(delays, d)
		mu.Unlock()
		return sleepCtx(ctx, time.Millisecond)
	}
	runInstance(t, p)

	h := &fakeHost{id: "registry-host", name: "r-1", boot: "b"}
	prod.send(h.ev("listen", "/usr/bin/nc", "TCP", "0.0.0.0", 4444, 1))
	waitFindings(t, cl.Addrs, cfg.FindingsTopic, "the listener judged after the registry answered", func(log map[string][]findings.Finding) error {
		if s := states(log[findings.ListenerID(h.id, ptrTrue(), 4026531840, "TCP", "0.0.0.0", 4444)]); s != "open " {
			return fmt.Errorf("4444: %q", s)
		}
		return nil
	}, cfg.RegistryURL)

	mu.Lock()
	got := append([]time.Duration(nil), delays...)
	mu.Unlock()
	// Jitter 0.5: three quarters of 100 ms, 200 ms, 400 ms...
	want := []time.Duration{75 * time.Millisecond, 150 * time.Millisecond, 300 * time.Millisecond, 600 * time.Millisecond, 1200 * time.Millisecond, 2400 * time.Millisecond}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("delays %v, want %v", got, want)
	}
	if n := counter(t, p, "bindwatch_audit_events_total", "undecodable"); n != 0 {
		t.Errorf("%v records skipped as undecodable while the registry was down", n)
	}
	if n := counter(t, p, "bindwatch_audit_rebuilds_total", ""); n != 3 {
		t.Errorf("%v rebuilds: the registry's outage was not waited for in place", n)
	}
	if err := p.Healthy(); err != nil {
		t.Error(err)
	}
	t.Logf("registry refused %d look-ups; delays %v", min(refused.Load(), 6), got)
}
