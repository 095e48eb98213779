package pipeline_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/bindwatch/bindwatch/schemas/codec/codectest"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	auditconfig "github.com/bindwatch/bindwatch/audit/config"
	"github.com/bindwatch/bindwatch/audit/policy"
	"github.com/bindwatch/bindwatch/audit/stream"
	"github.com/bindwatch/bindwatch/internal/config"
	"github.com/bindwatch/bindwatch/internal/topic"
	"github.com/bindwatch/bindwatch/pipeline"
	"github.com/bindwatch/bindwatch/schemas/codec"
	"github.com/bindwatch/bindwatch/test/avrotest"
	"github.com/bindwatch/bindwatch/test/kafkatest"
	"github.com/bindwatch/bindwatch/test/testenv"
)

// attackPolicy allows sshd only: the attacker's port is not allowed.
const attackPolicy = `
rules:
  - {name: sshd, action: allow, match: {exe: /usr/sbin/sshd, port: 22, protocol: TCP}}
`

// holdScript listens on an ephemeral loopback port, prints it, and holds
// it until its stdin closes.
const holdScript = `
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.bind(("127.0.0.1", 0)); s.listen(5)
print(s.getsockname()[1], flush=True)
sys.stdin.read()
s.close()
`

// bindFloodScript binds UDP sockets to ephemeral ports as fast as it can
// for argv[1] seconds and prints how many.
const bindFloodScript = `
import socket, sys, time
end, n = time.time() + float(sys.argv[1]), 0
while time.time() < end:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0)); s.close(); n += 1
print(n)
`

// lockedBuffer collects the audit's findings lines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// findings are the lines written so far, decoded.
func (l *lockedBuffer) findings(t *testing.T) []map[string]any {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(l.b.Bytes()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		f := map[string]any{}
		if err := json.Unmarshal(sc.Bytes(), &f); err != nil {
			t.Fatalf("finding line %q: %v", sc.Bytes(), err)
		}
		out = append(out, f)
	}
	return out
}

// listenerStates are the states the listener finding of port went
// through, in order.
func listenerStates(fs []map[string]any, port int) []string {
	var s []string
	for _, f := range fs {
		if f["kind"] == "listener" && f["port"] == float64(port) {
			s = append(s, fmt.Sprint(f["state"]))
		}
	}
	return s
}

// TestFloodAttackThroughAudit runs issue 19's attack through the real agent
// (BPF, Kafka) and the real audit: an unprivileged user floods binds past
// its budget while another of its processes listens on a port the policy
// does not allow and holds it. The audit raises a listener finding for it,
// resolves it once the listener closes, and raises no seq_gap: the agent's
// own records (an inventory every second, heartbeats, suppressed reports)
// reach the topic in seq order among the ring's, so the audit skips none
// of them as a duplicate and sees no hole.
func TestFloodAttackThroughAudit(t *testing.T) {
	testenv.RequireRoot(t)
	const uid = testenv.UserOrdering
	quiet := slog.New(slog.DiscardHandler)

	acfg := auditconfig.Defaults()
	cl := kafkatest.Start(t, kafkatest.Options{Brokers: 1, Topic: acfg.EventsTopic, Partitions: 1})
	acfg.Brokers, acfg.SessionTimeout, acfg.BatchTimeout = cl.Addrs, 6*time.Second, 20*time.Millisecond
	pol, err := policy.Parse("attack.yaml", []byte(attackPolicy))
	if err != nil {
		t.Fatal(err)
	}
	var lines lockedBuffer
	proc, err := stream.New(&acfg, &kafka.Dialer{Timeout: 5 * time.Second}, pol, &lines, quiet)
	if err != nil {
		t.Fatal(err)
	}
	actx, acancel := context.WithCancel(context.Background())
	adone := make(chan error, 1)
	go func() { adone <- proc.Run(actx) }()
	defer func() {
		acancel()
		if err := <-adone; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("audit: %v", err)
		}
	}()
	select {
	case <-proc.Ready():
	case err := <-adone:
		t.Fatalf("audit ended: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("audit not ready after 30 s")
	}

	cfg := config.Defaults()
	cfg.Kafka.Brokers, cfg.Kafka.Topic = cl.Addrs, acfg.EventsTopic
	cfg.Capture.PID, cfg.Capture.UID, cfg.Capture.UIDBudget = -1, uid, 200
	cfg.Capture.PinDir = "" // nothing of the test outlives it
	cfg.Spool.Dir = t.TempDir()
	cfg.Host.KeyFile = filepath.Join(t.TempDir(), "host.key")
	cfg.Metrics.Listen = "127.0.0.1:0"
	// An inventory and a heartbeat every second: the agent's own records
	// keep joining the flood's.
	cfg.Inventory.Interval, cfg.Heartbeat.Interval = time.Second, time.Second
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	agent, err := pipeline.Start(ctx, &cfg, quiet)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- agent.Run(ctx) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("agent: %v", err)
		}
		cctx, ccancel := context.WithTimeout(context.Background(), cfg.Shutdown.Timeout)
		defer ccancel()
		if err := agent.Close(cctx); err != nil {
			t.Errorf("closing the agent: %v", err)
		}
	}
	defer stop()

	as := &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
	holder := exec.Command(avrotest.Python, "-c", holdScript)
	holder.SysProcAttr, holder.Stderr = as, os.Stderr
	release, err := holder.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	said, err := holder.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	flood := exec.Command(avrotest.Python, "-c", bindFloodScript, "6")
	flood.SysProcAttr, flood.Stderr = as, os.Stderr
	var floodOut bytes.Buffer
	flood.Stdout = &floodOut
	if err := flood.Start(); err != nil {
		t.Fatal(err)
	}
	defer flood.Wait()
	time.Sleep(500 * time.Millisecond) // from inside the flood
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	defer holder.Wait()
	defer release.Close()
	line, err := bufio.NewReader(said).ReadString('\n')
	if err != nil {
		t.Fatalf("the listener said %q: %v", line, err)
	}
	port, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatal(err)
	}
	listenAt := time.Now()
	testenv.Eventually(t, fmt.Sprintf("a listener finding for port %d", port), 15*time.Second, func() error {
		if s := listenerStates(lines.findings(t), port); len(s) == 0 || s[0] != "open" {
			return fmt.Errorf("states %v", s)
		}
		return nil
	})
	t.Logf("listener finding open %v after listen()", time.Since(listenAt).Round(time.Millisecond))
	time.Sleep(2 * time.Second) // held through two inventories
	release.Close()
	if err := holder.Wait(); err != nil {
		t.Fatal(err)
	}
	closeAt := time.Now()
	testenv.Eventually(t, fmt.Sprintf("the listener finding of port %d resolved", port), 15*time.Second, func() error {
		if s := listenerStates(lines.findings(t), port); len(s) < 2 || s[len(s)-1] != "resolved" {
			return fmt.Errorf("states %v", s)
		}
		return nil
	})
	t.Logf("resolved %v after close()", time.Since(closeAt).Round(time.Millisecond))
	if err := flood.Wait(); err != nil {
		t.Fatal(err)
	}
	snap := agent.Snapshot()
	stop()
	es := agent.EnrichStats()
	t.Logf("the enricher held %d of the agent's records for ring records numbered before them, %v in all; %d holds ran out; %d came after a ring record numbered after them",
		es.OrderHeld, es.OrderWaited, es.OrderExpired, es.OrderLate)
	if snap.Dropped["budget"] == 0 {
		t.Errorf("the flood (%s binds) went over no budget", strings.TrimSpace(floodOut.String()))
	}

	// Every record the agent published, in the topic's order.
	recs := readTopic(t, cl.Addrs, acfg.EventsTopic)
	// The audit read them all: the stop record is the last one it needs.
	time.Sleep(time.Second)
	fs := lines.findings(t)
	reasons := map[string]int{}
	for _, f := range fs {
		if f["kind"] == "coverage" {
			reasons[fmt.Sprint(f["reason"], ":", f["state"])]++
		}
		if f["reason"] == "seq_gap" {
			t.Errorf("seq_gap finding: %v", f)
		}
	}
	t.Logf("flood: %s binds, %d over budget; %d records published; listener finding %v; coverage findings %v",
		strings.TrimSpace(floodOut.String()), snap.Dropped["budget"], len(recs), listenerStates(fs, port), reasons)

	// The order the audit relies on: no ring record after an agent record
	// numbered after it, nor the other way round. Seals and host keys
	// are numbered as their batch is sealed, after it: left out.
	var ring, own, snapshots, inversions int
	var maxRing, maxOwn int64 = -1, -1
	for _, r := range recs {
		seq := codectest.Int(r["seq"])
		switch r["kind"] {
		case "seal", "host_key":
			continue
		case "bind", "listen", "close":
			ring++
			if seq < maxOwn {
				t.Errorf("ring record %s seq %d after the agent's record seq %d", r["kind"], seq, maxOwn)
			}
			if seq < maxRing {
				inversions++ // two CPUs reserving the ring in the other order
			}
			maxRing = max(maxRing, seq)
		default:
			own++
			if r["kind"] == "snapshot_end" {
				snapshots++
			}
			if seq < maxRing {
				t.Errorf("agent record %s seq %d after ring record seq %d", r["kind"], seq, maxRing)
			}
			maxOwn = max(maxOwn, seq)
		}
	}
	t.Logf("%d ring records, %d of the agent's (%d snapshots); %d ring records after a higher ring seq", ring, own, snapshots, inversions)
	if snapshots < 3 {
		t.Errorf("%d inventories during the attack, want one a second", snapshots)
	}
}

// readTopic reads every record of the one-partition topic name, decoded.
func readTopic(t *testing.T, brokers []string, name string) []map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := topic.Open(ctx, kafka.DefaultDialer, brokers, name, true)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	dec, err := codec.NewDecoder("")
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for {
		// The topic is complete (the agent stopped): a second without a
		// message is its end.
		mctx, mcancel := context.WithTimeout(ctx, time.Second)
		m, err := r.Next(mctx)
		mcancel()
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, io.EOF) {
				return out
			}
			t.Fatal(err)
		}
		rec, err := dec.Decode(ctx, m.Value)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, rec.Map())
	}
}
