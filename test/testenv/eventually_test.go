package testenv

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestEventually(t *testing.T) {
	n := 0
	Eventually(t, "the third call", time.Second, func() bool { n++; return n == 3 })
	if n != 3 {
		t.Fatalf("cond called %d times, want 3", n)
	}
	m := 0
	Eventually(t, "the second call", time.Second, func() error {
		if m++; m < 2 {
			return errors.New("not yet")
		}
		return nil
	})
	if m != 2 {
		t.Fatalf("cond called %d times, want 2", m)
	}
}

// fatalRecorder records the failure Eventually reports; the Goexit that a
// real Fatal does is replaced by a panic the test recovers.
type fatalRecorder struct {
	testing.TB
	msg string
}

type fatalled struct{}

func (r *fatalRecorder) Helper() {}
func (r *fatalRecorder) Fatalf(format string, args ...any) {
	r.msg = fmt.Sprintf(format, args...)
	panic(fatalled{})
}

func TestEventuallyFailsWithTheLastReason(t *testing.T) {
	for _, tt := range []struct {
		name string
		run  func(tb testing.TB)
		want string
	}{
		{"bool", func(tb testing.TB) { Eventually(tb, "never", 20*time.Millisecond, func() bool { return false }) }, "never: not within 20ms"},
		{"error", func(tb testing.TB) {
			Eventually(tb, "never", 20*time.Millisecond, func() error { return errors.New("count 2, want 3") })
		}, "never: not within 20ms: count 2, want 3"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := &fatalRecorder{TB: t}
			func() {
				defer func() {
					if v := recover(); v != nil && v != (fatalled{}) {
						panic(v)
					}
				}()
				tt.run(r)
			}()
			if !strings.Contains(r.msg, tt.want) {
				t.Fatalf("failure %q, want %q", r.msg, tt.want)
			}
		})
	}
}
