package stream

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/bindwatch/bindwatch/audit/findings"
	"github.com/bindwatch/bindwatch/test/kafkatest"
	"github.com/bindwatch/bindwatch/test/testenv"
)

// With audit.ocsf_topic every finding transition is published there too,
// as an OCSF Detection Finding in JSON, on the partition and under the key
// of its Avro record.
func TestFindingsAsOCSF(t *testing.T) {
	cl := kafkatest.Start(t, kafkatest.Options{Topic: "bindwatch.bind-events", Partitions: 3})
	cfg := testConfig(cl.Addrs)
	cfg.OCSFTopic = "bindwatch.findings-ocsf"
	prod := newProducer(t, cl.Addrs, cfg.EventsTopic)
	h := containerHost()
	in := startInstance(t, cfg)
	prod.send(inPod(h.ev("listen", "/bin/busybox", "TCP", "0.0.0.0", 4444, 2)), inPod(h.ev("close", "/bin/busybox", "TCP", "0.0.0.0", 4444, 2)))
	id := findings.ListenerID(h.id, ptrTrue(), 4026531840, "TCP", "0.0.0.0", 4444)
	avro := waitFindings(t, cl.Addrs, cfg.FindingsTopic, "findings", func(log map[string][]findings.Finding) error {
		if s := states(log[id]); s != "open resolved " {
			return fmt.Errorf("%q", s)
		}
		return nil
	})
	in.stop()

	var got []kafka.Message
	testenv.Eventually(t, "two OCSF findings", 10*time.Second, func() error {
		got = nil
		for p := range 3 {
			if err := readPartition(t.Context(), &kafka.Dialer{Timeout: 5 * time.Second}, cl.Addrs, cfg.OCSFTopic, p, func(m kafka.Message) error {
				if string(m.Key) == id { // not the host's unsigned integrity finding
					got = append(got, m)
				}
				return nil
			}); err != nil {
				return err
			}
		}
		if len(got) != 2 {
			return fmt.Errorf("%d messages", len(got))
		}
		return nil
	})
	for i, m := range got {
		var ev struct {
			ClassUID    int   `json:"class_uid"`
			ActivityID  int   `json:"activity_id"`
			TypeUID     int64 `json:"type_uid"`
			StatusID    int   `json:"status_id"`
			SeverityID  int   `json:"severity_id"`
			Time        int64 `json:"time"`
			FindingInfo struct {
				UID string `json:"uid"`
			} `json:"finding_info"`
			Device struct {
				UID string `json:"uid"`
			} `json:"device"`
			Actor struct {
				Process struct {
					Container struct {
						Name string `json:"name"`
					} `json:"container"`
				} `json:"process"`
			} `json:"actor"`
		}
		if err := json.Unmarshal(m.Value, &ev); err != nil {
			t.Fatalf("%s: %v", m.Value, err)
		}
		wantAct, wantStatus := 1, 1 // Create, New
		if i == 1 {
			wantAct, wantStatus = 3, 4 // Close, Resolved
		}
		f := avro[id][i]
		if string(m.Key) != id || ev.ClassUID != 2004 || ev.ActivityID != wantAct || ev.TypeUID != int64(200400+wantAct) || ev.StatusID != wantStatus ||
			ev.SeverityID != 4 || ev.FindingInfo.UID != id || ev.Device.UID != h.id || ev.Time != f.Time.UnixMilli() || ev.Actor.Process.Container.Name != "shell" {
			t.Errorf("OCSF finding %d: key %s %s", i, m.Key, m.Value)
		}
	}
	t.Logf("the open finding as OCSF: %s", got[0].Value)
}
