// Package sinktest is an in-memory output for tests of the publish stage:
// it takes or refuses messages as the test says, and keeps what it took.
package sinktest

import (
	"context"
	"errors"
	"slices"
	"sync"

	"github.com/bindwatch/bindwatch/internal/sink"
	"github.com/bindwatch/bindwatch/internal/spool"
)

// ErrDown is the failure of every message while the sink is down.
var ErrDown = errors.New("sinktest: down")

// Sink keeps the messages it takes, in order. The zero value takes
// everything; it is safe for concurrent use.
type Sink struct {
	mu     sync.Mutex
	taken  []spool.Message
	calls  int
	down   bool
	reject func(spool.Message) bool
	closed bool
}

// SetDown makes every Publish and Ping fail (true) or succeed again.
func (s *Sink) SetDown(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = down
}

// RejectIf makes Publish refuse, as a rejection, the messages f picks.
func (s *Sink) RejectIf(f func(spool.Message) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reject = f
}

// Publish takes msgs in order, failing every message from the first one it
// cannot take on (as a Kafka producer does), and rejected ones alone.
func (s *Sink) Publish(ctx context.Context, msgs []spool.Message) ([]int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	perr := &sink.Error{Op: "sinktest publish", Total: len(msgs)}
	for i, m := range msgs {
		var err error
		switch {
		case ctx.Err() != nil:
			err = ctx.Err()
		case s.down:
			err = ErrDown
		case s.reject != nil && s.reject(m):
			perr.Failed = append(perr.Failed, i)
			perr.Errs = append(perr.Errs, sink.Reject(errors.New("sinktest: rejected")))
			continue
		default:
			s.taken = append(s.taken, m)
			continue
		}
		for j := i; j < len(msgs); j++ {
			perr.Failed = append(perr.Failed, j)
			perr.Errs = append(perr.Errs, err)
		}
		break
	}
	if len(perr.Failed) == 0 {
		return nil, nil
	}
	return perr.Failed, perr
}

// Ping fails while the sink is down.
func (s *Sink) Ping(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		return ErrDown
	}
	return nil
}

// Close marks the sink closed.
func (s *Sink) Close(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}

// Taken is a copy of what the sink took, in order.
func (s *Sink) Taken() []spool.Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.taken)
}

// Calls is how many times Publish was called.
func (s *Sink) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}
