package stream

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/bindwatch/bindwatch/audit/findings"
	"github.com/bindwatch/bindwatch/audit/policy"
	"github.com/bindwatch/bindwatch/audit/record"
	"github.com/bindwatch/bindwatch/audit/state"
	"github.com/bindwatch/bindwatch/internal/siem"
	"github.com/bindwatch/bindwatch/schemas"
	"github.com/bindwatch/bindwatch/schemas/codec"
	"github.com/bindwatch/bindwatch/test/avrotest"
	"github.com/bindwatch/bindwatch/test/kafkatest"
	"github.com/bindwatch/bindwatch/test/testenv"
)

// requireConfluentKafka stops t unless Debian's python3-confluent-kafka
// (and the python3-avro and python3-requests its Avro deserializer uses)
// can run.
func requireConfluentKafka(t *testing.T) {
	t.Helper()
	out, err := exec.Command(avrotest.Python, "-c", "import confluent_kafka.avro, requests, avro").CombinedOutput()
	if err != nil {
		testenv.Unavailable(t, "needs %s with confluent_kafka (Debian python3-confluent-kafka, python3-requests, python3-avro): %v: %s", avrotest.Python, err, out)
	}
}

// containerHost is a host whose unexpected listener runs in a pod, so the
// finding carries every workload field.
func containerHost() *fakeHost { return &fakeHost{id: "host-id-c1", name: "node-1", boot: "boot-1"} }

func inPod(e *schemas.BindEvent) *schemas.BindEvent {
	s := func(v string) *string { return &v }
	e.ContainerID, e.ContainerRuntime = s("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"), s("containerd")
	e.ContainerName, e.Image, e.ImageDigest = s("shell"), s("docker.io/library/busybox:1.36"), s("sha256:"+strings.Repeat("ab", 32))
	e.PodName, e.PodNamespace, e.PodUID = s("debug-7f9c"), s("shop"), s("6a1f7a52-3c1e-4d0f-9a7b-2f0c9d1e8b11")
	e.PodLabels, e.WorkloadSource = map[string]string{"app": "debug"}, s("cri")
	return e
}

// With schema.registry_url set, the state and findings topics are in
// Confluent's wire format under <topic>-value, and Confluent's own Python
// client reads every field of every message of both, as our codec does.
func TestConfluentClientReadsAuditTopics(t *testing.T) {
	requireConfluentKafka(t)
	cl := kafkatest.Start(t, kafkatest.Options{Topic: "bindwatch.bind-events", Partitions: 3})
	reg := srfake.New()
	t.Cleanup(reg.Close)
	cfg := testConfig(cl.Addrs)
	cfg.RegistryURL = reg.URL()
	prod := newProducer(t, cl.Addrs, cfg.EventsTopic)

	h := containerHost()
	in := startInstance(t, cfg)
	prod.send(
		h.ev("listen", "/usr/sbin/sshd", "TCP", "0.0.0.0", 22, 1),
		inPod(h.ev("listen", "/bin/busybox", "TCP", "0.0.0.0", 4444, 2)),
		inPod(h.ev("listen", "/bin/busybox", "UDP", "127.0.0.1", 5353, 3)),
		inPod(h.ev("close", "/bin/busybox", "UDP", "127.0.0.1", 5353, 3)),
	)
	id := findings.ListenerID(h.id, ptrTrue(), 4026531840, "TCP", "0.0.0.0", 4444)
	waitFindings(t, cl.Addrs, cfg.FindingsTopic, "findings", func(log map[string][]findings.Finding) error {
		if s := states(log[id]); s != "open " {
			return fmt.Errorf("busybox listener: %q", s)
		}
		n := 0
		for _, fs := range log {
			if fs[0].Kind != findings.KindIntegrity { // the host's unsigned finding: the test's producer does not seal
				n++
			}
		}
		if n != 2 {
			return fmt.Errorf("%d findings besides integrity, want 2", n)
		}
		return nil
	}, reg.URL())
	in.stop()

	// Our side: every message of both topics, and the ids the registry
	// holds under <topic>-value.
	type msgAt struct {
		topic     string
		partition int
		offset    int64
	}
	ours := map[msgAt]kafka.Message{}
	counts := map[string]int{}
	for _, name := range []string{cfg.StateTopic, cfg.FindingsTopic} {
		for p := range 3 {
			err := readPartition(t.Context(), &kafka.Dialer{Timeout: 5 * time.Second}, cl.Addrs, name, p, func(m kafka.Message) error {
				ours[msgAt{name, p, m.Offset}] = m
				counts[name]++
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	wantID := map[string]int{
		cfg.StateTopic:    registered(t, reg.URL(), cfg.StateTopic+"-value", schemas.ListenerStateSchema, schemas.ListenerStateLatest),
		cfg.FindingsTopic: registered(t, reg.URL(), cfg.FindingsTopic+"-value", schemas.FindingSchema, schemas.FindingLatest),
	}
	dec, err := codec.NewDecoder(reg.URL())
	if err != nil {
		t.Fatal(err)
	}

	script := "testdata/confluent_consume.py"
	cmd := exec.Command(avrotest.Python, script, strings.Join(cl.Addrs, ","), reg.URL(), "siem-test",
		fmt.Sprintf("%s=%d", cfg.StateTopic, counts[cfg.StateTopic]), fmt.Sprintf("%s=%d", cfg.FindingsTopic, counts[cfg.FindingsTopic]))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s", script, err, stderr.String())
	}
	fieldsOf := map[string][]string{
		cfg.StateTopic:    schemaFields(t, schemas.ListenerStateSchema, schemas.ListenerStateLatest),
		cfg.FindingsTopic: schemaFields(t, schemas.FindingSchema, schemas.FindingLatest),
	}
	lines := bytes.Split(bytes.TrimSpace(out), []byte("\n"))
	if len(lines) != len(ours) {
		t.Fatalf("Confluent's client read %d messages, the topics hold %d", len(lines), len(ours))
	}
	var tombstones, openFindings int
	for _, line := range lines {
		var got struct {
			Topic     string
			Partition int
			Offset    int64
			Key       string
			Value     map[string]any
		}
		d := json.NewDecoder(bytes.NewReader(line))
		d.UseNumber()
		if err := d.Decode(&got); err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		m, ok := ours[msgAt{got.Topic, got.Partition, got.Offset}]
		if !ok || string(m.Key) != got.Key {
			t.Fatalf("Confluent's client read %s, not in the topics", line)
		}
		if m.Value == nil {
			if got.Value != nil {
				t.Errorf("tombstone read as %v", got.Value)
			}
			tombstones++
			continue
		}
		if h, _, err := codec.ParseHeader(m.Value); err != nil || h.Framing != codec.Confluent || h.SchemaID != wantID[got.Topic] {
			t.Errorf("%s offset %d: header %+v %v, want confluent with id %d", got.Topic, got.Offset, h, err, wantID[got.Topic])
		}
		names := make([]string, 0, len(got.Value))
		for k := range got.Value {
			names = append(names, k)
		}
		slices.Sort(names)
		if want := slices.Sorted(slices.Values(fieldsOf[got.Topic])); !slices.Equal(names, want) {
			t.Errorf("%s offset %d: Confluent's client read fields %v, the schema has %v", got.Topic, got.Offset, names, want)
		}
		rec, err := dec.Decode(t.Context(), m.Value)
		if err != nil {
			t.Fatal(err)
		}
		if want := plainJSON(t, recordMap(rec.Fields)); !reflect.DeepEqual(plainJSON(t, got.Value), want) {
			t.Errorf("%s offset %d:\nConfluent's client: %s\nours:               %s", got.Topic, got.Offset, mustJSON(got.Value), mustJSON(want))
		}
		if got.Topic == cfg.FindingsTopic && got.Value["finding_id"] == id {
			openFindings++
			t.Logf("finding as Confluent's client reads it: %s", line)
			// The same message as consume --format ecs|ocsf maps it.
			codec, _ := record.NewCodec()
			_ = codec.ReadRegistry(reg.URL())
			f, err := codec.DecodeFinding(m.Value)
			if err != nil {
				t.Fatal(err)
			}
			fields := siem.FindingFields(record.ToSchema(&f))
			t.Logf("the same finding as ECS: %s", mustJSON(siem.ECSFinding(fields)))
			t.Logf("the same finding as OCSF: %s", mustJSON(siem.OCSFFinding(fields)))
		}
	}
	if tombstones == 0 || openFindings != 1 {
		t.Errorf("read %d tombstones (the closed UDP listener's), %d findings of the busybox listener; want some and 1", tombstones, openFindings)
	}
}

// registered is the id the registry gives the newest schema under subject,
// which must be that schema.
func registered(t *testing.T, url, subject string, text func(int) (string, error), latest int) int {
	t.Helper()
	resp, err := http.Get(url + "/subjects/" + subject + "/versions/latest")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v struct {
		ID     int    `json:"id"`
		Schema string `json:"schema"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("subject %s: %s %v", subject, resp.Status, err)
	}
	want, _ := text(latest)
	a, _ := codec.Fingerprint([]byte(want))
	b, err := codec.Fingerprint([]byte(v.Schema))
	if err != nil || a != b {
		t.Fatalf("subject %s holds another schema than v%d: %v", subject, latest, err)
	}
	return v.ID
}

func schemaFields(t *testing.T, text func(int) (string, error), latest int) []string {
	s, err := text(latest)
	if err != nil {
		t.Fatal(err)
	}
	var rec struct{ Fields []struct{ Name string } }
	if err := json.Unmarshal([]byte(s), &rec); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range rec.Fields {
		names = append(names, f.Name)
	}
	return names
}

// recordMap is a decoded record as Python prints it: timestamps in
// microseconds since the epoch.
func recordMap(fields []codec.Field) map[string]any {
	m := map[string]any{}
	for _, f := range fields {
		switch v := f.Value.(type) {
		case time.Time:
			m[f.Name] = v.UnixMicro()
		case []codec.Field:
			m[f.Name] = recordMap(v)
		default:
			m[f.Name] = v
		}
	}
	return m
}

// plainJSON is v through JSON and back, numbers kept exact, so values of
// both sides compare whatever Go types they started as.
func plainJSON(t *testing.T, v any) any {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(mustJSON(v)))
	d.UseNumber()
	var out any
	if err := d.Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// A topic written before schema.registry_url was set keeps its
// single-object records: an audit with a registry rebuilds from both
// framings, resolves a finding raised before the switch, and so does the
// next one, from a topic that now holds both.
func TestRebuildReadsBothFramings(t *testing.T) {
	cl := kafkatest.Start(t, kafkatest.Options{Topic: "bindwatch.bind-events", Partitions: 3})
	reg := srfake.New()
	t.Cleanup(reg.Close)
	cfg := testConfig(cl.Addrs)
	prod := newProducer(t, cl.Addrs, cfg.EventsTopic)
	h := containerHost()
	before := findings.ListenerID(h.id, ptrTrue(), 4026531840, "TCP", "0.0.0.0", 4444)
	after := findings.ListenerID(h.id, ptrTrue(), 4026531840, "TCP", "0.0.0.0", 5555)

	in := startInstance(t, cfg) // single-object
	prod.send(h.ev("listen", "/usr/bin/nc", "TCP", "0.0.0.0", 4444, 1))
	waitFindings(t, cl.Addrs, cfg.FindingsTopic, "finding before the switch", func(log map[string][]findings.Finding) error {
		if s := states(log[before]); s != "open " {
			return fmt.Errorf("%q", s)
		}
		return nil
	})
	in.stop()

	cfg.RegistryURL = reg.URL()
	in = startInstance(t, cfg) // rebuilt from single-object records
	prod.send(h.ev("close", "/usr/bin/nc", "TCP", "0.0.0.0", 4444, 1), h.ev("listen", "/usr/bin/nc", "TCP", "0.0.0.0", 5555, 2))
	waitFindings(t, cl.Addrs, cfg.FindingsTopic, "findings after the switch", func(log map[string][]findings.Finding) error {
		if s := states(log[before]); s != "open resolved " {
			return fmt.Errorf("finding from before the switch: %q", s)
		}
		if s := states(log[after]); s != "open " {
			return fmt.Errorf("finding after the switch: %q", s)
		}
		return nil
	}, reg.URL())
	in.stop()

	framings := map[codec.Framing]int{}
	for _, name := range []string{cfg.StateTopic, cfg.FindingsTopic} {
		for p := range 3 {
			_ = readPartition(t.Context(), &kafka.Dialer{Timeout: 5 * time.Second}, cl.Addrs, name, p, func(m kafka.Message) error {
				if m.Value != nil {
					h, _, _ := codec.ParseHeader(m.Value)
					framings[h.Framing]++
				}
				return nil
			})
		}
	}
	if framings[codec.SingleObject] == 0 || framings[codec.Confluent] == 0 {
		t.Fatalf("framings in the audit's topics: %v, want both", framings)
	}

	codec, _ := record.NewCodec()
	if err := codec.ReadRegistry(reg.URL()); err != nil {
		t.Fatal(err)
	}
	pol, err := policy.Parse("test.yaml", []byte(testPolicy))
	if err != nil {
		t.Fatal(err)
	}
	var total RebuildStats
	listenerOpen := 0
	for p := range 3 {
		tb, tr := state.New(), findings.New(pol)
		st, err := Rebuild(t.Context(), &kafka.Dialer{Timeout: 5 * time.Second}, cl.Addrs, cfg.StateTopic, cfg.FindingsTopic, p, codec, tb, tr)
		if err != nil {
			t.Fatalf("partition %d: %v", p, err)
		}
		total.Listeners += st.Listeners
		// Besides the host's unsigned integrity finding (the test's
		// producer does not seal): the listener findings.
		listenerOpen += tr.OpenByKind()[findings.KindListener]
		if tr.IsOpen(after) {
			total.Open++
		}
	}
	if total.Listeners != 1 || listenerOpen != 1 || total.Open != 1 {
		t.Errorf("rebuilt %d listeners and %d open listener findings (5555's open: %d), want the one on 5555 and its finding", total.Listeners, listenerOpen, total.Open)
	}
	// listeners --brokers reads the mixed topic with the registry, and
	// says what is missing without it.
	d := &kafka.Dialer{Timeout: 5 * time.Second}
	if ls, err := ReadListeners(t.Context(), d, cl.Addrs, cfg.StateTopic, reg.URL()); err != nil || len(ls) != 1 || ls[0].Port != 5555 {
		t.Errorf("ReadListeners with the registry: %v, %v", ls, err)
	}
	if _, err := ReadListeners(t.Context(), d, cl.Addrs, cfg.StateTopic, ""); err == nil || !strings.Contains(err.Error(), "no schema registry url") {
		t.Errorf("ReadListeners without the registry: %v, want an error naming the registry", err)
	}
}
