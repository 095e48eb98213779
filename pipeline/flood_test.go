package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/bindwatch/bindwatch/schemas/codec/codectest"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/bindwatch/bindwatch/internal/topic"
	"github.com/bindwatch/bindwatch/schemas/codec"
	"github.com/bindwatch/bindwatch/test/avrotest"
	"github.com/bindwatch/bindwatch/test/kafkatest"
	"github.com/bindwatch/bindwatch/test/testenv"
)

// floodListenScript floods as fast as it can (argv[1]: "bind", UDP binds;
// "listen", TCP socket+bind+listen+close) and, from inside the flood,
// listens on a port of its own for holdSeconds, then floods on for a few
// seconds more: the attack of issue 19 ("a flood does not hide a
// listener"). It prints when it listened and closed, and the port.
const floodListenScript = `
import json, socket, sys, time
mode, hold = sys.argv[1], float(sys.argv[2])
def one():
    if mode == "listen":
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("127.0.0.1", 0)); s.listen(1)
    else:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
    s.close()
start = time.time()
at_listen, at_close, at_end = start + 1.5, start + 1.5 + hold, start + 1.5 + hold + 4
out, held, n = {}, None, 0
while True:
    now = time.time()
    if held is None and "listen" not in out and now >= at_listen:
        held = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        held.bind(("127.0.0.1", 0)); held.listen(5)
        out["listen"], out["port"] = time.time(), held.getsockname()[1]
    elif held is not None and now >= at_close:
        held.close(); held = None
        out["close"] = time.time()
    elif now >= at_end:
        break
    one(); n += 1
out["flood"] = n
print(json.dumps(out))
`

// arrival is a message of the topic as the test's consumer got it.
type arrival struct {
	at     time.Time
	fields map[string]any
}

// TestFloodDoesNotHideListener: an unprivileged user floods past its budget
// and, from inside the flood, holds a TCP listener for 2.5 s. Its listen (or
// a snapshot holding it) and its end (its close, or the first snapshot
// after the close without it) each reach Kafka within 5 s. A bind flood
// must not touch the listener's records at all (they have a budget of their
// own); a flood of listens and closes suppresses them, and the agent
// retakes the inventory while it lasts.
func TestFloodDoesNotHideListener(t *testing.T) {
	testenv.RequireRoot(t)
	avrotest.Require(t)
	for _, mode := range []string{"bind", "listen"} {
		t.Run(mode+" flood", func(t *testing.T) { floodAndListen(t, mode) })
	}
}

func floodAndListen(t *testing.T, mode string) {
	const uid, hold, within = testenv.UserFlood, 2.5, 5 * time.Second
	topicName := "flood-" + mode
	cluster := kafkatest.Start(t, kafkatest.Options{Brokers: 1, Topic: topicName, Partitions: 1})
	cfg := testConfig(t, cluster.Addrs, topicName)
	cfg.Capture.PID, cfg.Capture.UID = -1, uid
	cfg.Capture.UIDBudget = 200
	agent := runAgent(t, &cfg, discardLogger())

	// Every message as it arrives, with when.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r, err := topic.Open(ctx, kafka.DefaultDialer, cluster.Addrs, topicName, true)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	dec, err := codec.NewDecoder("")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got []arrival
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			m, err := r.Next(ctx)
			if err != nil {
				return
			}
			at := time.Now()
			rec, err := dec.Decode(ctx, m.Value)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			got = append(got, arrival{at, rec.Map()})
			mu.Unlock()
		}
	}()

	child := exec.Command(avrotest.Python, "-c", floodListenScript, mode, fmt.Sprint(hold))
	child.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
	child.Stderr = os.Stderr
	out, err := child.Output()
	if err != nil {
		t.Fatalf("flood: %v", err)
	}
	var said struct {
		Listen, Close float64
		Port          int64
		Flood         int
	}
	if err := json.Unmarshal(out, &said); err != nil {
		t.Fatalf("the flood said %q: %v", out, err)
	}
	listenAt, closeAt := unixFloat(said.Listen), unixFloat(said.Close)
	time.Sleep(within) // whatever is due has arrived by now
	cancel()
	wg.Wait()
	budget := agent.Snapshot().Dropped["budget"]
	t.Logf("%s flood: %d calls, %d messages read, %d records over budget", mode, said.Flood, len(got), budget)
	if budget == 0 {
		t.Fatalf("nothing suppressed: the flood did not go over its budget")
	}

	seen, ended := listenerSeen(got, said.Port, uid, listenAt, closeAt)
	if seen.IsZero() {
		t.Errorf("the listener on port %d (held %.1f s from inside the flood) never reached Kafka", said.Port, hold)
	} else if d := seen.Sub(listenAt); d > within {
		t.Errorf("the listener on port %d reached Kafka %v after its listen(), want within %v", said.Port, d.Round(time.Millisecond), within)
	} else {
		t.Logf("listener in the stream %v after listen()", d.Round(time.Millisecond))
	}
	if ended.IsZero() {
		t.Errorf("the end of the listener on port %d never reached Kafka", said.Port)
	} else if d := ended.Sub(closeAt); d > within {
		t.Errorf("the end of the listener on port %d reached Kafka %v after its close(), want within %v", said.Port, d.Round(time.Millisecond), within)
	} else {
		t.Logf("its end in the stream %v after close()", d.Round(time.Millisecond))
	}
}

// listenerSeen is when the listener on port (of uid, listening from
// listenAt to closeAt) first reached the stream, by its listen record or a
// snapshot, and when its end did, once seen: its close record, or the end
// of a snapshot after closeAt that does not hold it.
func listenerSeen(got []arrival, port int64, uid int, listenAt, closeAt time.Time) (seen, ended time.Time) {
	holds := map[string]bool{} // snapshot ids holding the port
	for _, a := range got {
		f := a.fields
		mine := codectest.Int(f["port"]) == port && codectest.Int(f["uid"]) == int64(uid)
		switch f["kind"] {
		case "listen":
			if mine && codectest.Int(f["error"]) == 0 && seen.IsZero() {
				seen = a.at
			}
		case "snapshot":
			if mine && f["protocol"] == "TCP" {
				holds[fmt.Sprint(f["snapshot_id"])] = true
				if seen.IsZero() {
					seen = a.at
				}
			}
		case "close":
			if mine && !seen.IsZero() && ended.IsZero() {
				ended = a.at
			}
		case "snapshot_end":
			t, _ := f["time"].(time.Time)
			if !seen.IsZero() && !holds[fmt.Sprint(f["snapshot_id"])] && t.After(closeAt) && ended.IsZero() {
				ended = a.at
			}
		}
	}
	return seen, ended
}

func unixFloat(s float64) time.Time {
	return time.Unix(0, int64(s*float64(time.Second)))
}
