package testenv

import (
	"testing"
	"time"
)

// Eventually calls cond until it holds, and fails t, naming what, if it
// does not within limit. cond is a func() bool, or a func() error that
// returns nil once the condition holds and else says why not; the last
// reason is in the failure. It polls every tenth of the time waited so far,
// from 1 ms up to 100 ms: a condition that holds soon is seen soon, and one
// that costs a request is not asked hundreds of times a second.
func Eventually[C func() bool | func() error](t testing.TB, what string, limit time.Duration, cond C) {
	t.Helper()
	start := time.Now()
	for {
		var why error
		switch c := any(cond).(type) {
		case func() bool:
			if c() {
				return
			}
		case func() error:
			if why = c(); why == nil {
				return
			}
		}
		waited := time.Since(start)
		if waited > limit {
			if why != nil {
				t.Fatalf("%s: not within %v: %v", what, limit, why)
			}
			t.Fatalf("%s: not within %v", what, limit)
		}
		time.Sleep(min(max(waited/10, time.Millisecond), 100*time.Millisecond))
	}
}
