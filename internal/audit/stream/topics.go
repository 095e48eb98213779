package stream

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"

	"github.com/segmentio/kafka-go"

	"github.com/bindwatch/bindwatch/internal/topic"
)

// ensureTopics checks that the state and findings topics have as many
// partitions as the events topic, creating them (compacted) when missing
// and create is set: partition p of each holds what partition p of the
// events topic made, so an instance assigned p rebuilds from p alone.
func ensureTopics(ctx context.Context, d *kafka.Dialer, brokers []string, events string, create bool, names ...string) (int, error) {
	parts, err := topic.Partitions(ctx, d, brokers, events)
	if err != nil {
		return 0, err
	}
	n := len(parts)
	for _, name := range names {
		got, err := topic.Partitions(ctx, d, brokers, name)
		if err == nil {
			if len(got) != n {
				return 0, fmt.Errorf("topic %s has %d partitions, the events topic %s %d: they must be equal", name, len(got), events, n)
			}
			continue
		}
		if !create {
			return 0, err
		}
		if err := createCompacted(ctx, d, brokers, name, n); err != nil {
			return 0, err
		}
	}
	return n, nil
}

func createCompacted(ctx context.Context, d *kafka.Dialer, brokers []string, name string, partitions int) error {
	var errs []error
	for _, b := range brokers {
		conn, err := d.DialContext(ctx, "tcp", b)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		defer conn.Close()
		ctl, err := conn.Controller()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		all, err := conn.Brokers()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		cc, err := d.DialContext(ctx, "tcp", net.JoinHostPort(ctl.Host, strconv.Itoa(ctl.Port)))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		defer cc.Close()
		err = cc.CreateTopics(kafka.TopicConfig{
			Topic: name, NumPartitions: partitions, ReplicationFactor: min(3, len(all)),
			ConfigEntries: []kafka.ConfigEntry{{ConfigName: "cleanup.policy", ConfigValue: "compact"}},
		})
		if err != nil && !errors.Is(err, kafka.TopicAlreadyExists) {
			return fmt.Errorf("creating topic %s: %w", name, err)
		}
		return nil
	}
	return fmt.Errorf("creating topic %s: %w", name, errors.Join(errs...))
}
