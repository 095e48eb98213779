package stream

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/bindwatch/bindwatch/audit/findings"
	"github.com/bindwatch/bindwatch/internal/topic"
	"github.com/bindwatch/bindwatch/test/kafkatest"
	"github.com/bindwatch/bindwatch/test/testenv"
)

// Issue 21, item 5: the events topic grows from 2 to 3 partitions while
// the audit runs. The audit gives its state and findings topics a third
// partition before it writes anything for the new one (still compacted),
// consumes the new partition, and judges a host the agent's partitioner
// (murmur2) puts there: its listener on partition 2 of the state topic,
// its finding on partition 2 of the findings topic.
func TestEventsTopicGainsPartitions(t *testing.T) {
	cl := kafkatest.Start(t, kafkatest.Options{Topic: "bindwatch.bind-events", Partitions: 2})
	cfg := testConfig(cl.Addrs)
	in := startInstance(t, cfg)
	d := &kafka.Dialer{Timeout: 5 * time.Second}
	ctx := t.Context()

	// A host before the growth, judged as usual.
	before := &fakeHost{id: "host-before", name: "before-1", boot: "b"}
	prod := newProducer(t, cl.Addrs, cfg.EventsTopic)
	prod.send(before.ev("listen", "/usr/bin/nc", "TCP", "0.0.0.0", 4444, 1))

	admin := &kafka.Client{Addr: kafka.TCP(cl.Addrs...), Timeout: 10 * time.Second}
	resp, err := admin.CreatePartitions(ctx, &kafka.CreatePartitionsRequest{Topics: []kafka.TopicPartitionsConfig{{Name: cfg.EventsTopic, Count: 3}}})
	if err != nil {
		t.Fatal(err)
	}
	for name, err := range resp.Errors {
		if err != nil {
			t.Fatalf("adding a partition to %s: %v", name, err)
		}
	}

	// A host whose key the agent's partitioner puts on the new partition,
	// written by a producer that sees three partitions.
	var h *fakeHost
	for i := 0; h == nil; i++ {
		if id := fmt.Sprintf("host-new-%d", i); partitionOf([]byte(id), 3) == 2 {
			h = &fakeHost{id: id, name: "new-1", boot: "b"}
		}
	}
	// (Its own transport: the default one's metadata may still say two.)
	w := &kafka.Writer{Addr: kafka.TCP(cl.Addrs...), Topic: cfg.EventsTopic, Balancer: &kafka.Murmur2Balancer{}, BatchTimeout: time.Millisecond, RequiredAcks: kafka.RequireAll,
		Transport: &kafka.Transport{}}
	t.Cleanup(func() { w.Close() })
	v, err := prod.enc.Append(nil, h.ev("listen", "/usr/bin/nc", "TCP", "0.0.0.0", 5555, 1))
	if err != nil {
		t.Fatal(err)
	}
	msg := kafka.Message{Key: []byte(h.id), Value: v}
	if err := w.WriteMessages(ctx, msg); err != nil {
		t.Fatal(err)
	}
	onNew := 0
	if err := readPartition(ctx, d, cl.Addrs, cfg.EventsTopic, 2, func(m kafka.Message) error {
		onNew++
		return nil
	}); err != nil || onNew != 1 {
		t.Fatalf("%d records on the events topic's new partition, %v", onNew, err)
	}

	// (Read before they have it, the missing partition would be waited
	// for without end.)
	testenv.Eventually(t, "the audit's topics with a third partition", 30*time.Second, func() error {
		for _, name := range []string{cfg.StateTopic, cfg.FindingsTopic} {
			if parts, err := topic.Partitions(ctx, d, cl.Addrs, name); err != nil || len(parts) != 3 {
				return fmt.Errorf("%s: %d partitions, %v", name, len(parts), err)
			}
		}
		return nil
	})
	waitFindings(t, cl.Addrs, cfg.FindingsTopic, "the new partition's host judged", func(log map[string][]findings.Finding) error {
		if s := states(log[findings.ListenerID(before.id, ptrTrue(), 4026531840, "TCP", "0.0.0.0", 4444)]); s != "open " {
			return fmt.Errorf("the host before: %q", s)
		}
		if s := states(log[findings.ListenerID(h.id, ptrTrue(), 4026531840, "TCP", "0.0.0.0", 5555)]); s != "open " {
			return fmt.Errorf("the host on the new partition: %q", s)
		}
		return nil
	})
	for _, name := range []string{cfg.StateTopic, cfg.FindingsTopic} {
		parts, err := topic.Partitions(ctx, d, cl.Addrs, name)
		if err != nil || len(parts) != 3 {
			t.Errorf("%s: %d partitions, %v; want 3", name, len(parts), err)
		}
		if p, err := cleanupPolicy(ctx, d, cl.Addrs, name); err != nil || p != "compact" {
			t.Errorf("%s: cleanup.policy %q, %v", name, p, err)
		}
		var keys []string
		if err := readPartition(ctx, d, cl.Addrs, name, 2, func(m kafka.Message) error {
			keys = append(keys, string(m.Key))
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if len(keys) == 0 {
			t.Errorf("%s: nothing on partition 2", name)
		}
	}
	if !stateHas(t, cl.Addrs, cfg.StateTopic, 5555) {
		t.Error("the new host's listener is not on the state topic")
	}
	if err := in.p.Healthy(); err != nil {
		t.Error(err)
	}
}

// The events topic grew while no audit ran: at start, with
// audit.create_topics, the audit's topics are given as many partitions;
// without it, the audit refuses to start, saying how to add them.
func TestEnsureTopicsGrowsTheAuditsTopics(t *testing.T) {
	cl := kafkatest.Start(t, kafkatest.Options{Topic: "bindwatch.bind-events", Partitions: 3})
	cfg := testConfig(cl.Addrs)
	d := &kafka.Dialer{Timeout: 5 * time.Second}
	ctx := t.Context()
	for _, name := range []string{cfg.StateTopic, cfg.FindingsTopic} {
		if err := createCompacted(ctx, d, cl.Addrs, name, 2); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ensureTopics(ctx, d, cl.Addrs, cfg.EventsTopic, false, cfg.StateTopic); err == nil || !strings.Contains(err.Error(), "--partitions 3") {
		t.Errorf("without create_topics: %v", err)
	}
	n, err := ensureTopics(ctx, d, cl.Addrs, cfg.EventsTopic, true, cfg.StateTopic, cfg.FindingsTopic)
	if err != nil || n != 3 {
		t.Fatalf("ensureTopics: %d, %v", n, err)
	}
	for _, name := range []string{cfg.StateTopic, cfg.FindingsTopic} {
		if parts, err := topic.Partitions(ctx, d, cl.Addrs, name); err != nil || len(parts) != 3 {
			t.Errorf("%s: %d partitions, %v", name, len(parts), err)
		}
	}
}
