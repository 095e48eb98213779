package stream

import (
	"context"
	"errors"
	"time"

	"github.com/segmentio/kafka-go"

	auditconfig "github.com/bindwatch/bindwatch/internal/audit/config"
	"github.com/bindwatch/bindwatch/internal/audit/learn"
	"github.com/bindwatch/bindwatch/internal/audit/record"
	"github.com/bindwatch/bindwatch/internal/audit/state"
	"github.com/bindwatch/bindwatch/internal/topic"
	"github.com/bindwatch/bindwatch/pipeline/encode"
)

// Learn shows the learner the fleet's current listeners (the state topic,
// when there is one) and every listener the events topic carries for d.
// It reads without a consumer group: learning takes no partitions from the
// audit instances.
func Learn(ctx context.Context, d *kafka.Dialer, cfg *auditconfig.Config, dur time.Duration, l *learn.Learner) (events int, err error) {
	if ls, err := ReadListeners(ctx, d, cfg.Brokers, cfg.StateTopic); err == nil {
		for _, ln := range ls {
			l.Add(ln)
		}
	}
	slow, err := encode.NewDecoder(cfg.RegistryURL)
	if err != nil {
		return 0, err
	}
	dec, err := record.NewEventDecoder(slow)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, dur)
	defer cancel()
	r, err := topic.Open(ctx, d, cfg.Brokers, cfg.EventsTopic, false)
	if err != nil {
		return 0, err
	}
	defer r.Close()
	tb := state.New()
	var ev state.Event
	for {
		m, err := r.Next(ctx)
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
				return events, nil
			}
			return events, err
		}
		if err := dec.Decode(ctx, m.Value, &ev); err != nil {
			continue
		}
		events++
		for _, c := range tb.Apply(&ev).Changes {
			if c.Op == state.Added {
				l.Add(c.L)
			}
		}
	}
}
