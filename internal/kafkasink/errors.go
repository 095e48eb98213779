package kafkasink

import (
	"errors"
	"fmt"

	"github.com/segmentio/kafka-go"

	"github.com/bindwatch/bindwatch/internal/sink"
)

// ErrMessageTooLarge is why a message bigger than MaxMessageBytes failed: it
// was never sent, and resending it cannot succeed.
var ErrMessageTooLarge = fmt.Errorf("message larger than %d bytes", MaxMessageBytes)

// Rejected reports whether err, the failure of one message as Publish
// returns it, says the message itself is unacceptable (too large alone,
// corrupt), so that sending the same bytes again cannot succeed. Other
// failures (broker down, timeouts, leadership changes, authorization, a
// timestamp the broker disliked) may pass on a later attempt. Publish marks
// these with sink.Reject, so sink.Rejected says the same of its errors.
//
// A "too large" answer is about a record batch, not a message: Publish
// splits batches until a message is refused alone, and only then reports
// it, wrapped in ErrMessageTooLarge.
func Rejected(err error) bool {
	var tooLarge kafka.MessageTooLargeError
	switch {
	case sink.Rejected(err):
		return true
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
