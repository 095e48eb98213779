package stream

import (
	"context"
	"errors"
	"time"

	"github.com/segmentio/kafka-go"

	auditconfig "github.com/bindwatch/bindwatch/audit/config"
	"github.com/bindwatch/bindwatch/audit/learn"
	"github.com/bindwatch/bindwatch/audit/record"
	"github.com/bindwatch/bindwatch/audit/state"
	"github.com/bindwatch/bindwatch/internal/topic"
	"github.com/bindwatch/bindwatch/schemas/codec"
)

// Learn shows the learner the fleet's current listeners (the state topic,
// when there is one) and every listener the events topic carries for d.
// It reads without a consumer group: learning takes no partitions from the
// audit instances.
func Learn(ctx context.Context, d *kafka.Dialer, cfg *auditconfig.Config, dur time.Duration, l *learn.Learner) (events int, err error) {
	if ls, err := ReadListeners(ctx, d, cfg.Brokers, cfg.StateTopic, cfg.RegistryURL); err == nil {
		for _, ln := range ls {
			l.Add(ln)
		}
	}
	slow, err := codec.NewDecoder(cfg.RegistryURL)
	if err != nil {
		return 0, err
	}
	dec, err := record.NewEventDecoder(slow)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, dur)
	defer cancel()
	msgs, errs, err := tail(ctx, d, cfg.Brokers, cfg.EventsTopic)
	if err != nil {
		return 0, err
	}
	tb := state.New()
	var ev state.Event
	for {
		var m kafka.Message
		select {
		case m = <-msgs:
		case err := <-errs:
			return events, err
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return events, nil
			}
			return events, ctx.Err()
		}
		if err := dec.Decode(ctx, m.Value, &ev); err != nil {
			continue
		}
		events++
		for _, c := range tb.Apply(&ev).Changes {
			if c.Op != state.Removed { // added, or its workload arrived
				l.Add(c.L)
			}
		}
	}
}

// tail reads every partition of a topic from its end: the messages that
// arrive from now on. (A kafka-go reader without a group ignores
// StartOffset and would start from the oldest message.)
func tail(ctx context.Context, d *kafka.Dialer, brokers []string, name string) (<-chan kafka.Message, <-chan error, error) {
	parts, err := topic.Partitions(ctx, d, brokers, name)
	if err != nil {
		return nil, nil, err
	}
	msgs, errs := make(chan kafka.Message, 256), make(chan error, len(parts))
	for _, p := range parts {
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: name, Partition: p.ID, Dialer: d, MinBytes: 1, MaxBytes: 16 << 20, MaxWait: 100 * time.Millisecond})
		if err := r.SetOffset(kafka.LastOffset); err != nil {
			r.Close()
			return nil, nil, err
		}
		go func() {
			defer r.Close()
			for {
				m, err := r.ReadMessage(ctx)
				if err != nil {
					if ctx.Err() == nil {
						errs <- err
					}
					return
				}
				select {
				case msgs <- m:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	return msgs, errs, nil
}
