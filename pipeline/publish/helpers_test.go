package publish

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/bindwatch/bindwatch/pipeline/record"

	"github.com/bindwatch/bindwatch/internal/kafkasink"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// Config is the Kafka sink's, for the tests that run the stage against
// real brokers.
type Config = kafkasink.Config

// newPublisher makes a Kafka sink closed at the end of the test.
func newPublisher(t testing.TB, cfg Config) *kafkasink.Producer {
	t.Helper()
	p, err := kafkasink.New(cfg, quiet)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = p.Close(ctx)
	})
	return p
}

// observed is an Observer that calls the functions it has.
type observed struct {
	NopObserver
	delivered func(record.Ack)
	replay    func(error)
}

func (o observed) Delivered(a record.Ack) {
	if o.delivered != nil {
		o.delivered(a)
	}
}

func (o observed) Replay(err error) {
	if o.replay != nil {
		o.replay(err)
	}
}
