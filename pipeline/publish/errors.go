package publish

import (
	"errors"
	"fmt"
	"strings"

	"github.com/segmentio/kafka-go"
)

// ErrMessageTooLarge is why a message bigger than MaxMessageBytes failed: it
// was never sent, and resending it cannot succeed.
var ErrMessageTooLarge = fmt.Errorf("message larger than %d bytes", MaxMessageBytes)

// ErrNotSent is why a message was not sent: an earlier message of the same
// Publish call failed, and sending later ones first would break order.
var ErrNotSent = errors.New("not sent: an earlier message of the batch failed first")

// Error is what Publish returns when some or all of its messages did not
// reach Kafka.
type Error struct {
	Total  int     // messages in the Publish call
	Failed []int   // indexes of the failed messages, ascending
	Errs   []error // Errs[i] is why message Failed[i] failed
}

// Error summarises the distinct causes with how many messages each failed.
func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "kafka publish: %d of %d messages failed", len(e.Failed), e.Total)
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

// Rejected reports whether err, the failure of one message as Publish
// returns it, says the message itself is unacceptable (too large alone,
// corrupt), so that sending the same bytes again cannot succeed. Other
// failures (broker down, timeouts, leadership changes, authorization, a
// timestamp the broker disliked) may pass on a later attempt.
//
// A "too large" answer is about a record batch, not a message: Publish
// splits batches until a message is refused alone, and only then reports
// it, wrapped in ErrMessageTooLarge.
func Rejected(err error) bool {
	var tooLarge kafka.MessageTooLargeError
	switch {
	case errors.Is(err, ErrMessageTooLarge), errors.As(err, &tooLarge):
		return true
	case errors.Is(err, kafka.InvalidMessage),
		errors.Is(err, kafka.InvalidMessageSize),
		errors.Is(err, kafka.InvalidRecord):
		return true
	}
	return false
}

// batchTooLarge reports whether the brokers refused a record batch for its
// size, which says nothing yet about any one message of it.
func batchTooLarge(err error) bool {
	return errors.Is(err, kafka.MessageSizeTooLarge) || errors.Is(err, kafka.RecordListTooLarge)
}
