package pipeline

import (
	"context"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/bindwatch/bindwatch/internal/config"
	"github.com/bindwatch/bindwatch/internal/spool"
	"github.com/bindwatch/bindwatch/pipeline/batch"
	"github.com/bindwatch/bindwatch/pipeline/encode"
	"github.com/bindwatch/bindwatch/pipeline/enrich"
	"github.com/bindwatch/bindwatch/pipeline/publish"
	"github.com/bindwatch/bindwatch/pipeline/record"
	"github.com/bindwatch/bindwatch/schemas"
	"github.com/bindwatch/bindwatch/schemas/codec"
)

// runStages starts the stages after capture (enrich, batch, encode and
// publish to sink, with a spool in a temporary directory) joined and sized
// as Agent.Run joins them, for benchmarks and tests that feed decoded events
// themselves. Send on events and close it; wait returns once every stage
// has drained and ended. With a sealer, the encode stage seals each batch.
func runStages(tb testing.TB, cfg config.Config, sink publish.Sink, stats *Stats, sealer ...*encode.Sealer) (events chan<- record.Raw, wait func() error) {
	tb.Helper()
	// The stage always has a spool, as in the agent; with the sink taking
	// everything it stays empty.
	sp, err := spool.Open(tb.TempDir(), spool.Options{MaxBytes: cfg.Spool.MaxBytes, Logger: discardLogger()})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { sp.Close() })
	enr, err := enrich.New(enrich.Config{Logger: discardLogger()})
	if err != nil {
		tb.Fatal(err)
	}
	text, _ := schemas.BindEventSchema(schemas.Latest)
	enc, err := codec.NewSingleObject([]byte(text))
	if err != nil {
		tb.Fatal(err)
	}
	p := cfg.Pipeline
	in := make(chan record.Raw, p.QueueSize)
	records := make(chan record.Record, p.BatchSize)
	batches := make(chan []record.Record, 4)
	encoded := make(chan encode.Batch, 4)
	stage := publish.Stage{Sink: sink, Spool: sp, Key: []byte("test-host"), ShutdownTimeout: 10 * time.Second,
		LateAfter: cfg.Kafka.SpoolAfter, MaxPending: p.QueueSize, Stats: &stats.Publish, Logger: discardLogger()}
	var sealing *encode.Sealer
	if len(sealer) > 0 {
		sealing = sealer[0]
	}
	ctx := context.Background()
	var g errgroup.Group
	g.Go(func() error { return enr.Run(ctx, in, nil, records) })
	g.Go(func() error { return batch.Run(ctx, records, batches, batch.NewLimits(p.BatchSize, p.BatchTimeout)) })
	g.Go(func() error { return encode.Run(ctx, enc, batches, encoded, &stats.Encode, sealing, discardLogger()) })
	g.Go(func() error { return stage.Run(ctx, encoded) })
	return in, g.Wait
}
