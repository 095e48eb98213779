package batch

import (
	"sync/atomic"
	"time"
)

// Limits are a batcher's size and timeout, changeable while it runs (a
// configuration reload); a change applies from the next batch.
type Limits struct {
	size    atomic.Int64
	timeout atomic.Int64
}

// NewLimits returns Limits set to size and timeout.
func NewLimits(size int, timeout time.Duration) *Limits {
	l := &Limits{}
	l.Set(size, timeout)
	return l
}

// Set changes both limits; a size below 1 counts as 1.
func (l *Limits) Set(size int, timeout time.Duration) {
	l.size.Store(int64(max(size, 1)))
	l.timeout.Store(int64(timeout))
}

// Get returns the current size and timeout.
func (l *Limits) Get() (int, time.Duration) {
	return int(l.size.Load()), time.Duration(l.timeout.Load())
}
