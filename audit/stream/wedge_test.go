package stream

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/bindwatch/bindwatch/audit/findings"
	"github.com/bindwatch/bindwatch/audit/integrity"
	"github.com/bindwatch/bindwatch/test/kafkatest"
)

// F2: one record whose state and finding messages were too large to write
// (a 1.2 MB exe), and one with a 600 KB host_id, no longer stop their
// partition: the exe is cut to what the table keeps, the host_id refused,
// each counted and reported, and the next host on the same partition is
// judged. (A message still too large to write would be set aside:
// output_too_large.)
func TestOversizedRecordDoesNotWedge(t *testing.T) {
	cl := kafkatest.Start(t, kafkatest.Options{Topic: "bindwatch.bind-events", Partitions: 3,
		BrokerConfigs: map[string]string{"message.max.bytes": "8388608"}})
	cfg := testConfig(cl.Addrs)
	prod := newProducer(t, cl.Addrs, cfg.EventsTopic)
	prod.w.BatchBytes = 8 << 20
	in := startInstance(t, cfg)

	// Two hosts on one partition, and a record with a huge host_id under
	// the first one's key.
	var ids []string
	for i := 0; len(ids) < 2; i++ {
		id := fmt.Sprintf("host-%d", i)
		if partitionOf([]byte(id), 3) == partitionOf([]byte("host-0"), 3) {
			ids = append(ids, id)
		}
	}
	big := &fakeHost{id: ids[0], name: "big-1", boot: "b"}
	hugeID := &fakeHost{id: strings.Repeat("x", 600<<10), name: "huge-id", boot: "b"}
	next := &fakeHost{id: ids[1], name: "next-1", boot: "b"}

	prod.send(big.ev("listen", "/usr/bin/"+strings.Repeat("n", 1200<<10), "TCP", "0.0.0.0", 4444, 1))
	v, _ := prod.enc.Append(nil, hugeID.ev("listen", "/usr/bin/nc", "TCP", "0.0.0.0", 4444, 1))
	if err := prod.w.WriteMessages(t.Context(), kafka.Message{Key: []byte(big.id), Value: v}); err != nil { // on big's partition
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	prod.send(next.ev("listen", "/usr/bin/nc", "TCP", "0.0.0.0", 4444, 1))

	log := waitFindings(t, cl.Addrs, cfg.FindingsTopic, "the next host judged", func(log map[string][]findings.Finding) error {
		if s := states(log[findings.ListenerID(next.id, ptrTrue(), 4026531840, "TCP", "0.0.0.0", 4444)]); s != "open " {
			return fmt.Errorf("the next host's listener: %q", s)
		}
		if s := states(log[findings.IntegrityID(big.id, integrity.ReasonCut)]); s != "open " {
			return fmt.Errorf("field_cut: %q", s)
		}
		return nil
	})
	t.Log(log[findings.IntegrityID(big.id, integrity.ReasonCut)][0].Detail)
	var refused []string
	for _, fs := range log {
		if f := fs[0]; f.Kind == findings.KindIntegrity && f.Reason == integrity.ReasonBadHostID {
			refused = append(refused, f.Reason+": "+f.HostID)
		}
	}
	if len(refused) == 0 {
		t.Error("the 600 KB host_id was not reported")
	}
	t.Log(refused)
	if n := counter(t, in.p, "bindwatch_audit_refused_total", integrity.ReasonCut); n < 1 {
		t.Errorf("records cut: %v", n)
	}
}
