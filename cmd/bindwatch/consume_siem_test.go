package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/bindwatch/bindwatch/audit/findings"
	"github.com/bindwatch/bindwatch/audit/record"
	"github.com/bindwatch/bindwatch/schemas"
	"github.com/bindwatch/bindwatch/schemas/codec"
	"github.com/bindwatch/bindwatch/test/kafkatest"
)

// consume --format ecs|ocsf maps events and findings read from Kafka (a
// finding recognised by its writer schema, single-object or through the
// registry); json, the default, prints a finding's fields as it prints an
// event's.
func TestConsumeFormats(t *testing.T) {
	const topic = "mixed"
	cl := kafkatest.Start(t, kafkatest.Options{Topic: topic, Partitions: 1})
	text, _ := schemas.BindEventSchema(schemas.Latest)
	enc, err := codec.NewSingleObject([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 6, 18, 0, 0, 0, time.UTC)
	ev := func(kind string, seq int64) []byte {
		exe, exp, hn := "/usr/bin/nc", "wildcard", true
		b, err := enc.Append(nil, &schemas.BindEvent{Host: "node-1", HostID: "h1", BootID: "b1", Seq: seq, Time: at, PID: 42, Comm: "nc",
			Protocol: "TCP", Family: "AF_INET", Addr: "0.0.0.0", Port: 4444, Kind: kind, Exe: &exe, Exposure: &exp, HostNetNS: &hn,
			Holders: []schemas.Holder{}, SnapshotIncomplete: []string{}})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	codec, _ := record.NewCodec()
	fm, err := codec.EncodeFinding(&findings.Finding{ID: "f1", State: findings.Open, Kind: findings.KindListener, Host: "node-1", HostID: "h1",
		BootID: "b1", Seq: 2, PID: 42, Comm: "nc", Exe: "/usr/bin/nc", Protocol: "TCP", Addr: "0.0.0.0", Port: 4444, Exposure: "wildcard", FirstSeen: at, Time: at})
	if err != nil {
		t.Fatal(err)
	}
	// The same finding resolved, Confluent-framed as an audit with a
	// registry writes it.
	reg := srfake.New()
	t.Cleanup(reg.Close)
	cc, _ := record.NewCodec()
	if err := cc.WriteConfluent(t.Context(), reg.URL(), "s-value", "f-value"); err != nil {
		t.Fatal(err)
	}
	rm, err := cc.EncodeFinding(&findings.Finding{ID: "f1", State: findings.Resolved, Kind: findings.KindListener, Host: "node-1", HostID: "h1",
		BootID: "b1", Seq: 6, PID: 42, Comm: "nc", Exe: "/usr/bin/nc", Protocol: "TCP", Addr: "0.0.0.0", Port: 4444, Exposure: "wildcard", FirstSeen: at, Time: at.Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	w := &kafka.Writer{Addr: kafka.TCP(cl.Addrs...), Topic: topic, BatchTimeout: time.Millisecond, RequiredAcks: kafka.RequireAll}
	defer w.Close()
	if err := w.WriteMessages(context.Background(),
		kafka.Message{Value: ev("bind", 1)}, kafka.Message{Value: ev("listen", 2)}, kafka.Message{Value: fm},
		kafka.Message{Value: ev("heartbeat", 3)}, kafka.Message{Value: ev("snapshot", 4)}, kafka.Message{Value: rm}); err != nil {
		t.Fatal(err)
	}
	run := func(format string) ([]map[string]any, string) {
		t.Helper()
		cmd := exec.Command(binary, "consume", "--brokers", strings.Join(cl.Addrs, ","), "--topic", topic, "--from-beginning", "--max", "6", "--timeout", "10s",
			"--registry", reg.URL(), "--format", format)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("consume --format %s: %v\n%s", format, err, stderr.String())
		}
		var docs []map[string]any
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			var d map[string]any
			if err := json.Unmarshal([]byte(line), &d); err != nil {
				t.Fatalf("consume --format %s: %q: %v", format, line, err)
			}
			docs = append(docs, d)
		}
		return docs, stderr.String()
	}

	docs, stderr := run("json")
	if len(docs) != 6 || docs[2]["finding_id"] != "f1" || docs[2]["kind"] != "listener" || docs[1]["kind"] != "listen" || docs[5]["state"] != "resolved" || stderr != "" {
		t.Errorf("json: %v\nstderr %s", docs, stderr)
	}

	docs, _ = run("ecs")
	var kinds []string
	for _, d := range docs {
		e := d["event"].(map[string]any)
		kinds = append(kinds, e["kind"].(string)+"/"+e["action"].(string))
	}
	if got := strings.Join(kinds, " "); got != "event/bind event/listen alert/finding-open metric/heartbeat state/snapshot alert/finding-resolved" {
		t.Errorf("ecs event.kind/action: %s", got)
	}
	if d := docs[1]["destination"].(map[string]any); d["port"] != 4444.0 || d["ip"] != "0.0.0.0" {
		t.Errorf("ecs listen destination %v", d)
	}
	if rule := docs[2]["rule"].(map[string]any); rule["category"] != "listener" {
		t.Errorf("ecs finding rule %v", rule)
	}

	docs, stderr = run("ocsf")
	var classes []string
	for _, d := range docs {
		classes = append(classes, d["type_name"].(string))
	}
	if got := strings.Join(classes, ", "); got != "Network Activity: Bind, Network Activity: Listen, Detection Finding: Create, Network Activity: Listen, Detection Finding: Close" {
		t.Errorf("ocsf: %s", got)
	}
	if !strings.Contains(stderr, "1 heartbeat records skipped") {
		t.Errorf("ocsf stderr: %q", stderr)
	}
	if info := docs[2]["finding_info"].(map[string]any); info["uid"] != "f1" {
		t.Errorf("ocsf finding_info %v", info)
	}
}
