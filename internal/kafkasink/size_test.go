package kafkasink

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

// TestMessageSizeMatchesKafkaGo puts messages of exactly MaxMessageBytes and
// one byte more, by messageSize, to kafka-go's own check: it must pass the
// first and refuse the second, for any mix of key and headers. Otherwise
// Publish would either fail a whole call for one message or fail a message
// kafka-go would have sent.
func TestMessageSizeMatchesKafkaGo(t *testing.T) {
	// Nothing listens here: a message kafka-go accepts fails later, on
	// dialing, with another error than MessageTooLargeError.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	w := &kafka.Writer{Addr: kafka.TCP(addr), Topic: "t", BatchBytes: MaxMessageBytes}
	defer w.Close()

	shapes := []struct {
		name string
		msg  kafka.Message
	}{
		{"no key", kafka.Message{}},
		{"key", kafka.Message{Key: []byte("0123456789abcdef0123456789abcdef")}},
		{"headers", kafka.Message{Key: []byte("k"), Headers: []kafka.Header{{Key: "a", Value: []byte("b")}, {Key: string(make([]byte, 200)), Value: make([]byte, 70)}}}},
		{"many headers", kafka.Message{Headers: make([]kafka.Header, 130)}},
	}
	for _, s := range shapes {
		for _, extra := range []int64{0, 1} {
			t.Run(fmt.Sprintf("%s+%d", s.name, extra), func(t *testing.T) {
				m := s.msg
				m.Value = nil
				m.Value = make([]byte, MaxMessageBytes-messageSize(&m)+extra)
				if got := messageSize(&m); got != MaxMessageBytes+extra {
					t.Fatalf("messageSize = %d, want %d", got, MaxMessageBytes+extra)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
				defer cancel()
				err := w.WriteMessages(ctx, m)
				var tooLarge kafka.MessageTooLargeError
				if refused := errors.As(err, &tooLarge); refused != (extra > 0) {
					t.Errorf("%d bytes by messageSize: kafka-go refused=%v (%v)", MaxMessageBytes+extra, refused, err)
				}
			})
		}
	}
}

func TestVarintLen(t *testing.T) {
	for _, tt := range []struct {
		n    int
		want int64
	}{{0, 1}, {63, 1}, {64, 2}, {8191, 2}, {8192, 3}, {-1, 1}, {-65, 2}} {
		if got := varintLen(tt.n); got != tt.want {
			t.Errorf("varintLen(%d) = %d, want %d", tt.n, got, tt.want)
		}
	}
}
