package pipeline

import (
	"context"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bindwatch/bindwatch/schemas/codec"
	"github.com/bindwatch/bindwatch/test/avrotest"
	"github.com/bindwatch/bindwatch/test/kafkatest"
	"github.com/bindwatch/bindwatch/test/testenv"
)

// floodScript binds UDP sockets as fast as it can for a second and prints
// how many it bound.
const floodScript = `
import socket, time
n, end = 0, time.time() + 1
while time.time() < end:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0)); s.close(); n += 1
print(n)
`

// TestAgentReportsSuppressedFlood: a user's flood over its budget reaches
// Kafka as its records within the budget plus a suppressed record counting
// the rest: every bind the user made is accounted for, none silently lost.
func TestAgentReportsSuppressedFlood(t *testing.T) {
	testenv.RequireRoot(t)
	avrotest.Require(t)
	const topic, uid = "budget", testenv.UserFlood
	cluster := kafkatest.Start(t, kafkatest.Options{Brokers: 1, Topic: topic, Partitions: 1})
	cfg := testConfig(t, cluster.Addrs, topic)
	cfg.Capture.PID, cfg.Capture.UID = -1, uid
	cfg.Capture.UIDBudget = 200
	agent := runAgent(t, &cfg, discardLogger())

	child := exec.Command(avrotest.Python, "-c", floodScript)
	child.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
	out, err := child.Output()
	if err != nil {
		t.Fatalf("flood: %v", err)
	}
	binds, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // let the last records reach the pipeline
	drops := agent.Snapshot().Dropped
	agent.stop(t) // reports what the budget dropped

	dec, err := codec.NewDecoder("")
	if err != nil {
		t.Fatal(err)
	}
	var bound, suppressed int64
	n := int(kafkatest.Count(t, cluster.Addrs, topic))
	for _, m := range kafkatest.ReadAll(t, cluster.Addrs, topic, n, 30*time.Second) {
		rec, err := dec.Decode(context.Background(), m.Value)
		if err != nil {
			t.Fatal(err)
		}
		f := map[string]any{}
		for _, fl := range rec.Fields {
			f[fl.Name] = fl.Value
		}
		switch {
		case f["kind"] == "bind" && f["uid"] == int64(uid):
			bound++
		case f["kind"] == "suppressed" && f["uid"] == int64(uid):
			suppressed += f["suppressed"].(int64)
		}
	}
	t.Logf("the user bound %d sockets: %d bind records, %d suppressed", binds, bound, suppressed)
	if suppressed == 0 || bound+suppressed != int64(binds) {
		t.Fatalf("%d bind records + %d suppressed for %d binds: want every bind accounted for, some suppressed", bound, suppressed, binds)
	}
	if drops["budget"] != uint64(suppressed) || drops["ring_buffer_full"] != 0 {
		t.Errorf("drops %v: want budget %d and no ring-full", drops, suppressed)
	}
}
