package stream

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/bindwatch/bindwatch/internal/kafkaconn"
	"github.com/bindwatch/bindwatch/internal/topic"
)

// ensureTopics checks that the state and findings topics have as many
// partitions as the events topic and are compacted, creating them when
// missing and create is set: partition p of each holds what partition p of
// the events topic made, so an instance assigned p rebuilds from p alone.
//
// Neither is looked up before it exists: with auto.create.topics.enable
// (Apache Kafka's default) the first metadata request that names a missing
// topic creates it with the broker's default partitions and no compaction.
// So it is created first (an existing one is kept), or, without create,
// its configuration is described, which creates nothing.
func ensureTopics(ctx context.Context, d *kafka.Dialer, brokers []string, events string, create bool, names ...string) (int, error) {
	parts, err := topic.Partitions(ctx, d, brokers, events)
	if err != nil {
		return 0, err
	}
	n := len(parts)
	if create {
		for _, name := range names {
			if err := createCompacted(ctx, d, brokers, name, n); err != nil {
				return 0, err
			}
		}
	}
	// Described first: describing a missing topic creates nothing.
	for _, name := range names {
		if err := checkCompacted(ctx, d, brokers, name); err != nil {
			return 0, err
		}
	}
	if create {
		// The events topic may have grown while no audit ran.
		if err := growTopics(ctx, d, brokers, n, names...); err != nil {
			return 0, err
		}
	}
	for _, name := range names {
		got, err := topic.Partitions(ctx, d, brokers, name)
		if err != nil {
			return 0, err
		}
		if len(got) != n {
			return 0, fmt.Errorf("topic %s has %d partitions, the events topic %s %d: they must be equal (kafka-topics --alter --topic %s --partitions %d, or set audit.create_topics)", name, len(got), events, n, name, n)
		}
	}
	return n, nil
}

// growTopics gives each of names n partitions where it has fewer: the
// events topic grew, and partition p of each holds what partition p of the
// events topic made. Partitions another instance added first are kept.
func growTopics(ctx context.Context, d *kafka.Dialer, brokers []string, n int, names ...string) error {
	var grow []kafka.TopicPartitionsConfig
	for _, name := range names {
		parts, err := topic.Partitions(ctx, d, brokers, name)
		if err != nil {
			return err
		}
		if len(parts) < n {
			grow = append(grow, kafka.TopicPartitionsConfig{Name: name, Count: int32(n)})
		}
	}
	if len(grow) == 0 {
		return nil
	}
	cl := &kafka.Client{Addr: kafka.TCP(brokers...), Transport: kafkaconn.TransportOf(d), Timeout: 10 * time.Second}
	resp, err := cl.CreatePartitions(ctx, &kafka.CreatePartitionsRequest{Topics: grow})
	if err != nil {
		return fmt.Errorf("adding partitions to the audit's topics (to %d, as the events topic): %w", n, err)
	}
	for name, err := range resp.Errors {
		if err != nil && !errors.Is(err, kafka.InvalidPartitionNumber) { // INVALID_PARTITIONS: it has them already
			return fmt.Errorf("adding partitions to topic %s (to %d, as the events topic): %w", name, n, err)
		}
	}
	return nil
}

// checkCompacted refuses a topic whose cleanup.policy is not compact, or
// that does not exist.
func checkCompacted(ctx context.Context, d *kafka.Dialer, brokers []string, name string) error {
	policy, err := cleanupPolicy(ctx, d, brokers, name)
	if err != nil {
		return fmt.Errorf("topic %s: %w", name, err)
	}
	if !slices.Contains(strings.Split(policy, ","), "compact") {
		return fmt.Errorf("topic %s has cleanup.policy=%s, want compact: the audit keeps the latest record per key there, and a rebuild reads it all (kafka-configs --alter --entity-type topics --entity-name %s --add-config cleanup.policy=compact)", name, policy, name)
	}
	return nil
}

// cleanupPolicy is a topic's cleanup.policy; an error for a topic that
// does not exist (describing a topic never creates it).
func cleanupPolicy(ctx context.Context, d *kafka.Dialer, brokers []string, name string) (string, error) {
	cl := &kafka.Client{Addr: kafka.TCP(brokers...), Transport: kafkaconn.TransportOf(d), Timeout: 10 * time.Second}
	resp, err := cl.DescribeConfigs(ctx, &kafka.DescribeConfigsRequest{Resources: []kafka.DescribeConfigRequestResource{{
		ResourceType: kafka.ResourceTypeTopic, ResourceName: name, ConfigNames: []string{"cleanup.policy"},
	}}})
	if err != nil {
		return "", fmt.Errorf("describing its configuration: %w", err)
	}
	for _, r := range resp.Resources {
		if r.Error != nil {
			return "", fmt.Errorf("describing its configuration: %w (create it compacted, or set audit.create_topics)", r.Error)
		}
		for _, e := range r.ConfigEntries {
			if e.ConfigName == "cleanup.policy" {
				return e.ConfigValue, nil
			}
		}
	}
	return "delete", nil // not reported: the broker's default
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
