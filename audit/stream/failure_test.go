package stream

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/bindwatch/bindwatch/audit/findings"
	"github.com/bindwatch/bindwatch/test/kafkatest"
	"github.com/bindwatch/bindwatch/test/testenv"
)

// A state write the brokers refuse after the batch's findings went out,
// for a reason that is neither a retry's nor the message's (not
// authorized: the partition stops rather than skip or set aside): the
// instance rebuilds the partition from the topics, replays the batch, and
// publishes its finding no second time.
func TestRefusedStateWriteRaisesNothingTwice(t *testing.T) {
	cl := kafkatest.Start(t, kafkatest.Options{Topic: "bindwatch.bind-events", Partitions: 3})
	cfg := testConfig(cl.Addrs)
	prod := newProducer(t, cl.Addrs, cfg.EventsTopic)
	in := startInstance(t, cfg)

	var refused atomic.Int32
	cl.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		pr := req.(*kmsg.ProduceRequest)
		for _, tp := range pr.Topics {
			if tp.Topic != cfg.StateTopic {
				continue
			}
			resp := pr.ResponseKind().(*kmsg.ProduceResponse)
			for _, t := range pr.Topics {
				rt := kmsg.NewProduceResponseTopic()
				rt.Topic = t.Topic
				for _, p := range t.Partitions {
					rp := kmsg.NewProduceResponseTopicPartition()
					rp.Partition = p.Partition
					rp.ErrorCode = 29 // TOPIC_AUTHORIZATION_FAILED: not worth a retry, nor the message's fault
					rt.Partitions = append(rt.Partitions, rp)
				}
				resp.Topics = append(resp.Topics, rt)
			}
			refused.Add(1)
			return resp, nil, true
		}
		return nil, nil, false
	})

	h := &fakeHost{id: "host-id-x", name: "x", boot: "b"}
	prod.send(h.ev("listen", "/usr/bin/nc", "TCP", "0.0.0.0", 4444, 3))
	id := findings.ListenerID(h.id, ptrTrue(), 4026531840, "TCP", "0.0.0.0", 4444)
	waitFindings(t, cl.Addrs, cfg.FindingsTopic, "the finding", func(log map[string][]findings.Finding) error {
		if s := states(log[id]); s != "open " {
			return fmt.Errorf("%q", s)
		}
		return nil
	})
	testenv.Eventually(t, "the listener on the state topic after a refused write", 20*time.Second, func() error {
		if refused.Load() == 0 || !stateHas(t, cl.Addrs, cfg.StateTopic, 4444) {
			return fmt.Errorf("state write refused %d times; the listener is not on the state topic", refused.Load())
		}
		return nil
	})
	if err := in.p.Healthy(); err != nil {
		t.Errorf("after the rebuild: %v", err)
	}
	// Three partitions rebuilt at the start, the refused one once more.
	if n := counter(t, in.p, "bindwatch_audit_rebuilds_total", ""); n < 4 {
		t.Errorf("%v rebuilds: the refused write did not make the instance rebuild", n)
	}
	prod.send(h.ev("close", "/usr/bin/nc", "TCP", "0.0.0.0", 4444, 3))
	waitFindings(t, cl.Addrs, cfg.FindingsTopic, "resolved once", func(log map[string][]findings.Finding) error {
		if s := states(log[id]); s != "open resolved " {
			return fmt.Errorf("%q", s)
		}
		return nil
	})
}

func stateHas(t *testing.T, brokers []string, topic string, port int32) bool {
	t.Helper()
	ls, err := ReadListeners(t.Context(), &kafka.Dialer{Timeout: 5 * time.Second}, brokers, topic, "")
	if err != nil {
		return false
	}
	for _, l := range ls {
		if l.Port == port {
			return true
		}
	}
	return false
}
