package stream

import (
	"bytes"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/bindwatch/bindwatch/audit/findings"
	"github.com/bindwatch/bindwatch/audit/integrity"
	"github.com/bindwatch/bindwatch/test/kafkatest"
	"github.com/bindwatch/bindwatch/test/testenv"
)

// refuseProduce makes the cluster answer a produce request with the error
// code code returns for it, or handle it as usual when code returns 0.
func refuseProduce(cl *kafkatest.Cluster, code func(topic string, records []byte) int16) {
	cl.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		cl.KeepControl()
		pr := req.(*kmsg.ProduceRequest)
		var c int16
		for _, tp := range pr.Topics {
			for _, p := range tp.Partitions {
				if c == 0 {
					c = code(tp.Topic, p.Records)
				}
			}
		}
		if c == 0 {
			return nil, nil, false
		}
		resp := pr.ResponseKind().(*kmsg.ProduceResponse)
		for _, t := range pr.Topics {
			rt := kmsg.NewProduceResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewProduceResponseTopicPartition()
				rp.Partition = p.Partition
				rp.ErrorCode = c
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp, nil, true
	})
}

// counterSum adds up the series of a counter that carry label.
func counterSum(t testing.TB, p *Processor, name, label string) float64 {
	fams, err := p.Metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetValue() == label {
					sum += m.GetCounter().GetValue()
					break
				}
			}
		}
	}
	return sum
}

// Issue 21, item 4: the brokers refusing an output message for what it is
// (INVALID_RECORD, every time it is sent) do not stop its partition: the
// message is set aside, counted and reported, and the next host on the
// same partition is judged, with no rebuild. Refusals that may pass
// (REQUEST_TIMED_OUT, more of them than the writer's own attempts) are
// retried in place: the finding is written once, nothing is lost.
func TestRefusedOutputDoesNotWedge(t *testing.T) {
	cl := kafkatest.Start(t, kafkatest.Options{Topic: "bindwatch.bind-events", Partitions: 3})
	cfg := testConfig(cl.Addrs)
	cfg.OCSFTopic = "bindwatch.findings-ocsf"
	prod := newProducer(t, cl.Addrs, cfg.EventsTopic)
	in := startInstance(t, cfg)

	marker := []byte("refuse-me")
	var refused, timedOut, timeouts atomic.Int32
	refuseProduce(cl, func(topic string, records []byte) int16 {
		switch {
		case topic == cfg.EventsTopic:
			return 0
		case bytes.Contains(records, marker):
			refused.Add(1)
			return 87 // INVALID_RECORD
		case topic == cfg.FindingsTopic && timeouts.Add(-1) >= 0:
			timedOut.Add(1)
			return 7 // REQUEST_TIMED_OUT
		}
		return 0
	})

	var ids []string
	for i := 0; len(ids) < 2; i++ {
		id := fmt.Sprintf("host-%d", i)
		if partitionOf([]byte(id), 3) == partitionOf([]byte("host-0"), 3) {
			ids = append(ids, id)
		}
	}
	bad := &fakeHost{id: ids[0], name: "bad-1", boot: "b"}
	next := &fakeHost{id: ids[1], name: "next-1", boot: "b"}
	prod.send(bad.ev("listen", "/usr/bin/refuse-me", "TCP", "0.0.0.0", 4444, 1))
	time.Sleep(500 * time.Millisecond)
	prod.send(next.ev("listen", "/usr/bin/nc", "TCP", "0.0.0.0", 4444, 1))

	badID := findings.ListenerID(bad.id, ptrTrue(), 4026531840, "TCP", "0.0.0.0", 4444)
	log := waitFindings(t, cl.Addrs, cfg.FindingsTopic, "the next host judged", func(log map[string][]findings.Finding) error {
		if s := states(log[findings.ListenerID(next.id, ptrTrue(), 4026531840, "TCP", "0.0.0.0", 4444)]); s != "open " {
			return fmt.Errorf("the next host's listener: %q (the brokers refused %d requests)", s, refused.Load())
		}
		if s := states(log[findings.IntegrityID(bad.id, integrity.ReasonRefused)]); s != "open " {
			return fmt.Errorf("output_refused: %q", s)
		}
		return nil
	})
	t.Log(log[findings.IntegrityID(bad.id, integrity.ReasonRefused)][0].Detail)
	if s := states(log[badID]); s != "" {
		t.Errorf("the refused finding was written: %q", s)
	}
	// The finding, its OCSF twin and the listener's state message.
	if n := counterSum(t, in.p, "bindwatch_audit_outputs_set_aside_total", integrity.ReasonRefused); n < 3 {
		t.Errorf("%v messages set aside, want 3", n)
	}
	if n := counter(t, in.p, "bindwatch_audit_rebuilds_total", ""); n != 3 {
		t.Errorf("%v rebuilds: a refused message stopped its partition", n)
	}
	if err := in.p.Healthy(); err != nil {
		t.Error(err)
	}

	// Eight timeouts: more than the writer's three attempts per write.
	timeouts.Store(8)
	prod.send(next.ev("listen", "/usr/bin/nc", "TCP", "0.0.0.0", 6666, 2))
	id6666 := findings.ListenerID(next.id, ptrTrue(), 4026531840, "TCP", "0.0.0.0", 6666)
	waitFindings(t, cl.Addrs, cfg.FindingsTopic, "the finding written after the timeouts", func(log map[string][]findings.Finding) error {
		if s := states(log[id6666]); s != "open " {
			return fmt.Errorf("6666: %q (%d timeouts answered)", s, timedOut.Load())
		}
		return nil
	})
	testenv.Eventually(t, "the listener on the state topic", 10*time.Second, func() error {
		if !stateHas(t, cl.Addrs, cfg.StateTopic, 6666) {
			return fmt.Errorf("6666 is not on the state topic")
		}
		return nil
	})
	if timedOut.Load() < 8 {
		t.Errorf("%d timeouts answered, want 8", timedOut.Load())
	}
	if n := counter(t, in.p, "bindwatch_audit_write_retries_total", cfg.FindingsTopic); n < 1 {
		t.Errorf("%v retries", n)
	}
	if n := counter(t, in.p, "bindwatch_audit_rebuilds_total", ""); n != 3 {
		t.Errorf("%v rebuilds: the timeouts were not retried in place", n)
	}
	t.Logf("refused %d requests, %d timeouts; %v retries, %v set aside", refused.Load(), timedOut.Load(),
		counter(t, in.p, "bindwatch_audit_write_retries_total", cfg.FindingsTopic), counterSum(t, in.p, "bindwatch_audit_outputs_set_aside_total", integrity.ReasonRefused))
}

// The brokers refusing every message of a topic "for what it is" (a
// timestamp bound the clock is outside of, a policy) is the topic's
// setting, not a message's fault: after maxAsideRun messages set aside in
// a row the partition stops and says so, instead of dropping the audit's
// output.
func TestTopicWideRefusalStopsThePartition(t *testing.T) {
	defer func(n int) { maxAsideRun = n }(maxAsideRun)
	maxAsideRun = 3
	cl := kafkatest.Start(t, kafkatest.Options{Topic: "bindwatch.bind-events", Partitions: 3})
	cfg := testConfig(cl.Addrs)
	prod := newProducer(t, cl.Addrs, cfg.EventsTopic)
	in := startInstance(t, cfg)
	var refused atomic.Int32
	refuseProduce(cl, func(topic string, _ []byte) int16 {
		if topic != cfg.FindingsTopic {
			return 0
		}
		refused.Add(1)
		return 32 // INVALID_TIMESTAMP
	})
	h := &fakeHost{id: "host-x", name: "x-1", boot: "b"}
	prod.send(h.ev("listen", "/usr/bin/nc", "TCP", "0.0.0.0", 4444, 1), h.ev("listen", "/usr/bin/nc", "TCP", "0.0.0.0", 5555, 2))
	testenv.Eventually(t, "the partition stopped", 20*time.Second, func() error {
		if in.p.Healthy() == nil || counter(t, in.p, "bindwatch_audit_rebuilds_total", "") < 4 {
			return fmt.Errorf("healthy, %v rebuilds (%d writes refused)", counter(t, in.p, "bindwatch_audit_rebuilds_total", ""), refused.Load())
		}
		return nil
	})
	t.Logf("%v; %d writes refused, %v messages set aside", in.p.Healthy(), refused.Load(), counterSum(t, in.p, "bindwatch_audit_outputs_set_aside_total", integrity.ReasonRefused))
}
