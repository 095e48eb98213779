package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
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

	"github.com/bindwatch/bindwatch/audit/findings"
	"github.com/bindwatch/bindwatch/audit/record"
	"github.com/bindwatch/bindwatch/internal/topic"
	"github.com/bindwatch/bindwatch/schemas"
	"github.com/bindwatch/bindwatch/test/avrotest"
	"github.com/bindwatch/bindwatch/test/kafkatest"
	"github.com/bindwatch/bindwatch/test/testenv"
)

// auditUID is the user the audit test's listeners run as; its agent
// reports that user's sockets only, so the host's own do not interfere.
const auditUID = testenv.UserAudit

// auditProcess is one `bindwatch audit` instance.
type auditProcess struct {
	*testenv.Process
	*logLines
	name     string
	mu       sync.Mutex
	findings []map[string]any
	seen     map[string]time.Time // finding id/state -> when printed
}

func startAudit(t *testing.T, name, cfgPath string) *auditProcess {
	t.Helper()
	p := &auditProcess{name: name, seen: map[string]time.Time{}}
	cmd := exec.Command(binary, "audit", "--config", cfgPath)
	stdout, _ := cmd.StdoutPipe()
	stderr, _ := cmd.StderrPipe()
	p.Process = testenv.Start(t, cmd, agentStopLimit)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var f map[string]any
			if err := json.Unmarshal(sc.Bytes(), &f); err != nil {
				t.Errorf("%s printed a line that is not JSON: %q", name, sc.Text())
				continue
			}
			p.mu.Lock()
			p.findings = append(p.findings, f)
			p.seen[fmt.Sprint(f["finding_id"], "/", f["state"])] = time.Now()
			p.mu.Unlock()
		}
	}()
	p.logLines = readLog(t, name, stderr, 30*time.Second)
	return p
}

func (p *auditProcess) printed(id, state string) (time.Time, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	at, ok := p.seen[id+"/"+state]
	return at, ok
}

// sockets is a python3 process, as auditUID, that opens and closes
// listeners when told.
type sockets struct {
	*testenv.Process
	in  io.WriteCloser
	out *bufio.Reader
}

const socketsScript = `
import socket, sys
socks = {}
for line in sys.stdin:
    op, *args = line.split()
    if op == "listen":
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind((args[0], 0))
        s.listen()
        socks[s.getsockname()[1]] = s
        print(s.getsockname()[1], flush=True)
    elif op == "flash":
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind((args[0], 0))
        s.listen()
        port = s.getsockname()[1]
        s.close()
        print(port, flush=True)
    elif op == "close":
        socks.pop(int(args[0])).close()
        print("closed", flush=True)
`

func startSockets(t *testing.T) *sockets {
	t.Helper()
	// Debian's python3: the one first on PATH may live where auditUID
	// cannot reach.
	const py = "/usr/bin/python3"
	if _, err := os.Stat(py); err != nil {
		testenv.Unavailable(t, "no %s (Debian's python3): %v", py, err)
	}
	s := &sockets{}
	cmd := exec.Command(py, "-c", socketsScript)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: auditUID, Gid: auditUID}}
	s.in, _ = cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	s.out = bufio.NewReader(out)
	cmd.Stderr = os.Stderr
	s.Process = testenv.Start(t, cmd, 10*time.Second)
	// Closing stdin ends it; what is left running is killed.
	t.Cleanup(func() { s.in.Close(); s.Wait(t) })
	return s
}

func (s *sockets) do(t *testing.T, cmd string) string {
	t.Helper()
	if _, err := fmt.Fprintln(s.in, cmd); err != nil {
		t.Fatal(err)
	}
	line, err := s.out.ReadString('\n')
	if err != nil {
		t.Fatalf("sockets %q: %v", cmd, err)
	}
	return strings.TrimSpace(line)
}

// findingsOnTopic reads every finding transition back from the topic.
func findingsOnTopic(t *testing.T, brokers []string, name string) []findings.Finding {
	t.Helper()
	codec, err := record.NewCodec()
	if err != nil {
		t.Fatal(err)
	}
	n := topicCount(t, brokers, name)
	if n == 0 {
		return nil
	}
	var out []findings.Finding
	for _, m := range kafkatest.ReadAll(t, brokers, name, int(n), 10*time.Second) {
		f, err := codec.DecodeFinding(m.Value)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, f)
	}
	return out
}

// topicCount is how many messages a topic holds.
func topicCount(t *testing.T, brokers []string, name string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var n int64
	for _, p := range mustPartitions(t, brokers, name) {
		conn, err := kafka.DialLeader(ctx, "tcp", brokers[0], name, p)
		if err != nil {
			t.Fatal(err)
		}
		first, last, err := conn.ReadOffsets()
		conn.Close()
		if err != nil {
			t.Fatal(err)
		}
		n += last - first
	}
	return n
}

func mustPartitions(t *testing.T, brokers []string, name string) []int {
	t.Helper()
	ps, err := topic.Partitions(context.Background(), kafka.DefaultDialer, brokers, name)
	if err != nil {
		t.Fatal(err)
	}
	var ids []int
	for _, p := range ps {
		ids = append(ids, p.ID)
	}
	return ids
}

// TestAuditEndToEnd: the agent, real listeners, two audit instances in
// one group on a 3-broker cluster. The one doing the work is killed with
// SIGKILL mid-stream and the other completes the findings, none doubled;
// an instance started after the listeners opened knows them from the
// compacted topic; the expected listener raises nothing.
func TestAuditEndToEnd(t *testing.T) {
	testenv.RequireRoot(t)
	const events = "bindwatch.bind-events"
	cluster := kafkatest.Start(t, kafkatest.Options{Brokers: 3, Topic: events, Partitions: 3})
	dir := t.TempDir()
	brokers := strings.Join(cluster.Addrs, ", ")
	agentCfg := writeAgentConfig(t, dir, agentConfig{uid: auditUID, brokers: cluster.Addrs, topic: events, spoolDir: filepath.Join(dir, "spool")})
	policyPath := filepath.Join(dir, "policy.yaml")
	writeFile(t, policyPath, fmt.Sprintf("rules:\n  - name: loopback-helpers\n    action: allow\n    match: {uid: %d, exposure: loopback, protocol: TCP}\n", auditUID))
	metricsURL := map[string]string{}
	auditCfg := func(name string) string {
		p := filepath.Join(dir, name+".yaml")
		port := freeTCPPort(t)
		metricsURL[name] = fmt.Sprintf("http://127.0.0.1:%d", port)
		writeFile(t, p, fmt.Sprintf("kafka:\n  brokers: [%s]\naudit:\n  group: e2e\n  policy: %s\n  session_timeout: 6s\n  batch_timeout: 10ms\nmetrics:\n  listen: 127.0.0.1:%d\nlog:\n  level: debug\n",
			brokers, policyPath, port))
		return p
	}

	runAgentProcess(t, agentCfg)
	a := startAudit(t, "audit-a", auditCfg("a"))
	b := startAudit(t, "audit-b", auditCfg("b"))
	a.waitLog(t, "partition rebuilt")
	b.waitLog(t, "partition rebuilt")

	socks := startSockets(t)
	expected := socks.do(t, "listen 127.0.0.1")
	opened := time.Now()
	unexpected := socks.do(t, "listen 0.0.0.0")
	flash := socks.do(t, "flash 0.0.0.0")
	t.Logf("expected 127.0.0.1:%s, unexpected 0.0.0.0:%s, a millisecond 0.0.0.0:%s", expected, unexpected, flash)

	// The host's one partition is with one instance: find it by its output.
	idOf := map[string]string{}
	var worker, other *auditProcess
	testenv.Eventually(t, "findings printed", 20*time.Second, func() bool {
		for _, p := range []*auditProcess{a, b} {
			p.mu.Lock()
			for _, f := range p.findings {
				idOf[fmt.Sprint(f["port"])] = fmt.Sprint(f["finding_id"])
			}
			p.mu.Unlock()
			if id := idOf[unexpected]; id != "" {
				if _, ok := p.printed(id, "open"); ok && idOf[flash] != "" {
					if _, ok := p.printed(idOf[flash], "resolved"); ok {
						worker = p
					}
				}
			}
		}
		return worker != nil
	})
	other = a
	if worker == a {
		other = b
	}
	at, _ := worker.printed(idOf[unexpected], "open")
	t.Logf("listen() to finding printed: %v", at.Sub(opened))

	// SIGKILL mid-stream: the other instance takes the partition over and
	// sees the rest.
	worker.Kill(t)
	socks.do(t, "close "+unexpected)
	second := socks.do(t, "listen 0.0.0.0")
	portID := func(p *auditProcess, port string) string {
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, f := range p.findings {
			if fmt.Sprint(f["port"]) == port {
				return fmt.Sprint(f["finding_id"])
			}
		}
		return ""
	}
	testenv.Eventually(t, "the other instance completes the findings", 40*time.Second, func() bool {
		_, resolved := other.printed(idOf[unexpected], "resolved")
		id := portID(other, second)
		_, opened := other.printed(id, "open")
		return resolved && id != "" && opened
	})

	// An instance started now knows the listeners from the compacted
	// topic: once the other leaves, it resolves the second listener when it
	// closes, and raises nothing again.
	c := startAudit(t, "audit-c", auditCfg("c"))
	c.waitLog(t, "partition rebuilt")
	other.Stop(t, syscall.SIGTERM)
	testenv.Eventually(t, "audit-c holds every partition", 20*time.Second, func() bool {
		out, _ := exec.Command(binary, "listeners", "--brokers", strings.Join(cluster.Addrs, ","), "--port", second, "-j").Output()
		return strings.Contains(string(out), `"port":`+second)
	})
	out, err := exec.Command(binary, "listeners", "--brokers", strings.Join(cluster.Addrs, ","), "--exposure", "loopback", "-j").CombinedOutput()
	if err != nil || !strings.Contains(string(out), `"port":`+expected) {
		t.Errorf("bindwatch listeners --brokers lacks the expected listener %s: %v\n%s", expected, err, out)
	}
	time.Sleep(2 * time.Second) // let audit-c take the partitions audit-b left
	socks.do(t, "close "+second)
	secondID := portID(other, second)
	testenv.Eventually(t, "audit-c resolves the second listener", 30*time.Second, func() bool {
		_, ok := c.printed(secondID, "resolved")
		return ok
	})
	if _, again := c.printed(secondID, "open"); again {
		t.Error("audit-c opened the second listener's finding again")
	}
	if code, body := httpGet(t, metricsURL["c"]+"/healthz"); code != 200 {
		t.Errorf("audit-c /healthz: %d %s", code, body)
	}
	_, page := httpGet(t, metricsURL["c"]+"/metrics")
	for _, series := range []string{"bindwatch_audit_lag{partition=", "bindwatch_audit_listeners{partition=", "bindwatch_audit_open_findings{kind=", "bindwatch_audit_evaluations_total ", `bindwatch_audit_findings_total{state="resolved"} `} {
		if !strings.Contains(page, series) {
			t.Errorf("audit-c /metrics lacks %s", series)
		}
	}

	// On the topic: every finding alternates open, resolved; the expected
	// listener raised nothing; the millisecond listener has its pair.
	mine := map[string]bool{unexpected: true, flash: true, second: true, expected: true}
	byID := map[string][]string{}
	seen := map[string][]string{} // every record of a port, to tell a replayed record from a second one
	for _, f := range findingsOnTopic(t, cluster.Addrs, "bindwatch.findings") {
		port := fmt.Sprint(f.Port)
		if !mine[port] || f.Addr == "" {
			continue
		}
		if port == expected {
			t.Errorf("the expected listener raised %+v", f)
		}
		byID[port] = append(byID[port], f.State)
		seen[port] = append(seen[port], fmt.Sprintf("%s at %v seq %d", f.State, f.Time, f.Seq))
	}
	for _, port := range []string{unexpected, flash, second} {
		if got := strings.Join(byID[port], " "); got != "open resolved" {
			t.Errorf("port %s: findings %q on the topic, want \"open resolved\": %s", port, got, strings.Join(seen[port], "; "))
		}
	}

	// The compacted topic, read by kcat (librdkafka) and decoded by
	// python3-avro: the latest value of the expected listener's key is its
	// state; the closed ones end in tombstones.
	n := topicCount(t, cluster.Addrs, "bindwatch.listeners")
	latest := map[string][]byte{}
	for _, r := range kafkatest.KcatConsume(t, cluster.Addrs, "bindwatch.listeners", int(n), 20*time.Second) {
		latest[string(r.Key)] = r.Value
	}
	schemaText, _ := schemas.ListenerStateSchema(schemas.ListenerStateLatest)
	var values [][]byte
	tombstones := 0
	for _, v := range latest {
		if v == nil {
			tombstones++
			continue
		}
		values = append(values, v)
	}
	found := false
	for _, d := range avrotest.Decode(t, schemaText, values) {
		if d.Record["record"] == "listener" && fmt.Sprint(d.Record["port"]) == expected && d.Record["addr"] == "127.0.0.1" {
			found = true
		}
	}
	if !found || tombstones < 3 {
		t.Errorf("bindwatch.listeners by kcat and python3-avro: expected listener found %v, %d tombstones (want at least 3)", found, tombstones)
	}

	// SIGHUP reloads the policy: one that allows nothing raises the
	// expected listener; a broken one is refused and changes nothing.
	expectedID := findings.ListenerID(idHost(t, c), ptrTo(true), netnsOf(t, cluster.Addrs, expected), "TCP", "127.0.0.1", atoi32(t, expected))
	writeFile(t, policyPath, "rules: []\n")
	c.Signal(syscall.SIGHUP)
	testenv.Eventually(t, "the reloaded policy raises the expected listener", 20*time.Second, func() bool {
		_, ok := c.printed(expectedID, "open")
		return ok
	})
	writeFile(t, policyPath, "rules:\n  - name: x\n    action: allow\n    match: {port: 70000}\n")
	c.Signal(syscall.SIGHUP)
	c.waitLog(t, "policy reload refused")

	// --learn writes a policy allowing what listens now (from the state
	// topic) and what opens while it watches.
	learned := filepath.Join(dir, "learned.yaml")
	if out, err := exec.Command(binary, "audit", "--config", auditCfg("learn"), "--learn", "1s", "--write-policy", learned).CombinedOutput(); err != nil {
		t.Fatalf("audit --learn: %v\n%s", err, out)
	}
	text, err := os.ReadFile(learned)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(text), `exe: "/usr/bin/python3`) || !strings.Contains(string(text), `exposure: "loopback"`) {
		t.Errorf("learned policy lacks the expected listener on %s:\n%s", expected, text)
	}
}

func ptrTo[T any](v T) *T { return &v }

func atoi32(t *testing.T, s string) int32 {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return int32(n)
}

// idHost is the host id the instance's findings carry.
func idHost(t *testing.T, p *auditProcess) string {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, f := range p.findings {
		return fmt.Sprint(f["host_id"])
	}
	t.Fatal("no finding printed yet")
	return ""
}

// netnsOf is the network namespace the fleet's listener on port is in.
func netnsOf(t *testing.T, brokers []string, port string) int64 {
	t.Helper()
	out, err := exec.Command(binary, "listeners", "--brokers", strings.Join(brokers, ","), "--port", port, "-j").Output()
	if err != nil {
		t.Fatal(err)
	}
	var l struct {
		NetNS int64 `json:"netns_id"`
	}
	if err := json.Unmarshal(out, &l); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	return l.NetNS
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}
