package stream

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/bindwatch/bindwatch/internal/topic"
	"github.com/bindwatch/bindwatch/test/kafkatest"
)

// Against a broker that creates missing topics on a metadata request (Apache
// Kafka's default, and kafkatest's), the audit creates its topics, with the
// events topic's partitions and compacted, before anything looks them up;
// and it refuses a state topic that is not compacted.
func TestTopicsBeforeAutoCreation(t *testing.T) {
	cl := kafkatest.Start(t, kafkatest.Options{Topic: "bindwatch.bind-events", Partitions: 3})
	cfg := testConfig(cl.Addrs)
	d := &kafka.Dialer{Timeout: 5 * time.Second}
	ctx := context.Background()
	n, err := ensureTopics(ctx, d, cl.Addrs, cfg.EventsTopic, true, cfg.StateTopic, cfg.FindingsTopic)
	if err != nil || n != 3 {
		t.Fatalf("ensureTopics: %d partitions, %v", n, err)
	}
	for _, name := range []string{cfg.StateTopic, cfg.FindingsTopic} {
		parts, err := topic.Partitions(ctx, d, cl.Addrs, name)
		if err != nil || len(parts) != 3 {
			t.Errorf("%s: %d partitions, %v; want 3", name, len(parts), err)
		}
		if p, err := cleanupPolicy(ctx, d, cl.Addrs, name); err != nil || p != "compact" {
			t.Errorf("%s: cleanup.policy %q, %v", name, p, err)
		}
	}

	// A state topic some earlier look-up auto-created: the broker's
	// default partitions, no compaction. Refused, saying why.
	if _, err := topic.Partitions(ctx, d, cl.Addrs, "autocreated"); err != nil {
		t.Fatalf("the test cluster does not auto-create: %v", err)
	}
	_, err = ensureTopics(ctx, d, cl.Addrs, cfg.EventsTopic, true, "autocreated")
	if err == nil || !strings.Contains(err.Error(), "cleanup.policy") {
		t.Fatalf("an auto-created state topic: %v", err)
	}
	t.Log(err)

	// Without audit.create_topics, a missing topic is an error and is not
	// created by asking.
	if _, err := ensureTopics(ctx, d, cl.Addrs, cfg.EventsTopic, false, "missing-state"); err == nil {
		t.Fatal("a missing state topic without create_topics: no error")
	}
	if p, err := cleanupPolicy(ctx, d, cl.Addrs, "missing-state"); err == nil {
		t.Fatalf("the missing topic was created (cleanup.policy %q)", p)
	}
}
