// Package batch groups a stream into slices by count and by time: a batch is
// sent when it holds Size items, or Timeout after its first item arrived,
// whichever comes first.
package batch

import (
	"context"
	"time"
)

// Run reads in until it is closed, sends each batch on out, and closes out
// after sending the last, partial one. It does not stop when ctx is
// cancelled: shutdown is ordered, so upstream closing in is what ends it, and
// nothing read is dropped. A new slice is sent each time; the receiver owns
// it. limits are read at the start of each batch.
func Run[T any](ctx context.Context, in <-chan T, out chan<- []T, limits *Limits) error {
	defer close(out)
	size, timeout := limits.Get()
	timer := time.NewTimer(timeout)
	timer.Stop()
	var pending []T
	flush := func() {
		if len(pending) > 0 {
			out <- pending
			pending = nil
		}
		timer.Stop()
	}
	for {
		select {
		case item, ok := <-in:
			if !ok {
				flush()
				return nil
			}
			if pending == nil {
				size, timeout = limits.Get()
				pending = make([]T, 0, size)
				timer.Reset(timeout)
			}
			pending = append(pending, item)
			if len(pending) >= size {
				flush()
			}
		case <-timer.C:
			flush()
		}
	}
}
