// Package sink is what every output of the agent says about a delivery:
// which messages of a call did not make it and why, and whether sending
// them again can help. The publish stage reads only this, so an output is
// one package that returns these errors.
package sink

import (
	"errors"
	"fmt"
	"strings"
)

// ErrNotSent is why a message was not sent: an earlier message of the same
// call failed, and sending later ones first would break order.
var ErrNotSent = errors.New("not sent: an earlier message of the batch failed first")

// ErrRejected marks the failure of a message the output refused for its
// content (too large, corrupt): sending the same bytes again cannot succeed.
var ErrRejected = errors.New("rejected")

// Reject marks err as a rejection (errors.Is(err, ErrRejected)); its text
// stays err's.
func Reject(err error) error { return rejected{err} }

// Rejected reports whether err, the failure of one message, was marked a
// rejection by its output.
func Rejected(err error) bool { return errors.Is(err, ErrRejected) }

type rejected struct{ error }

func (r rejected) Unwrap() error        { return r.error }
func (r rejected) Is(target error) bool { return target == ErrRejected }

// Error is what an output returns when some or all of the messages of one
// call did not reach it.
type Error struct {
	Op     string  // what failed, for the message: "kafka publish"
	Total  int     // messages in the call
	Failed []int   // indexes of the failed messages, ascending
	Errs   []error // Errs[i] is why message Failed[i] failed
}

// Error summarises the distinct causes with how many messages each failed.
func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d of %d messages failed", e.Op, len(e.Failed), e.Total)
	for i, c := range e.causes() {
		sep := "; "
		if i == 0 {
			sep = ": "
		}
		fmt.Fprintf(&b, "%s%d × %v (first at message %d)", sep, c.count, c.err, c.first)
	}
	return b.String()
}

// Unwrap gives errors.Is and errors.As each distinct cause.
func (e *Error) Unwrap() []error {
	var errs []error
	for _, c := range e.causes() {
		errs = append(errs, c.err)
	}
	return errs
}

type cause struct {
	err   error
	count int
	first int
}

// causes groups Errs by message text, in order of first appearance: a whole
// failed batch carries one error many times.
func (e *Error) causes() []cause {
	var cs []cause
	at := map[string]int{}
	for i, err := range e.Errs {
		s := err.Error()
		if j, ok := at[s]; ok {
			cs[j].count++
			continue
		}
		at[s] = len(cs)
		cs = append(cs, cause{err: err, count: 1, first: e.Failed[i]})
	}
	return cs
}
