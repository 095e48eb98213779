package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bindwatch/bindwatch/test/kafkatest"
	"github.com/bindwatch/bindwatch/test/testenv"
)

// agentConfig is what the tests set in a `bindwatch run` configuration;
// every other key keeps its default.
type agentConfig struct {
	ports    []int    // capture.ports; none: unset
	uid, pid int      // capture.uid, capture.pid; 0: unset
	pinDir   string   // capture.pin_dir; "": nothing pinned
	brokers  []string // kafka.brokers
	topic    string   // kafka.topic
	spoolDir string   // spool.dir
	metrics  string   // metrics.listen; "": not served
}

// yaml is c as a configuration file, with text logs, which the tests read.
func (c agentConfig) yaml() string {
	var b strings.Builder
	b.WriteString("capture:\n")
	if len(c.ports) > 0 {
		ports := make([]string, len(c.ports))
		for i, p := range c.ports {
			ports[i] = strconv.Itoa(p)
		}
		fmt.Fprintf(&b, "  ports: [%s]\n", strings.Join(ports, ", "))
	}
	if c.uid != 0 {
		fmt.Fprintf(&b, "  uid: %d\n", c.uid)
	}
	if c.pid != 0 {
		fmt.Fprintf(&b, "  pid: %d\n", c.pid)
	}
	fmt.Fprintf(&b, "  pin_dir: %q\n", c.pinDir)
	fmt.Fprintf(&b, "kafka:\n  brokers: [%s]\n  topic: %s\n", strings.Join(c.brokers, ", "), c.topic)
	fmt.Fprintf(&b, "spool:\n  dir: %s\n", c.spoolDir)
	fmt.Fprintf(&b, "metrics:\n  listen: %q\n", c.metrics)
	b.WriteString("log:\n  format: text\n")
	return b.String()
}

// writeAgentConfig writes c to bindwatch.yaml in dir and returns its path.
func writeAgentConfig(t *testing.T, dir string, c agentConfig) string {
	t.Helper()
	path := filepath.Join(dir, "bindwatch.yaml")
	writeFile(t, path, c.yaml())
	return path
}

// agentProcess is `bindwatch run` with its log lines readable by the test.
type agentProcess struct {
	*testenv.Process
	*logLines
}

func runAgentProcess(t *testing.T, cfgPath string) *agentProcess {
	t.Helper()
	return startAgentCmd(t, exec.Command(binary, "run", "--config", cfgPath))
}

// startAgentCmd starts cmd, a prepared `bindwatch run`, and waits until the
// agent says it started.
func startAgentCmd(t *testing.T, cmd *exec.Cmd) *agentProcess {
	t.Helper()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &agentProcess{Process: testenv.Start(t, cmd, agentStopLimit)}
	p.logLines = readLog(t, "agent", stderr, 20*time.Second)
	p.waitLog(t, "bindwatch agent started")
	return p
}

// agentStopLimit bounds how long the tests wait for an agent to exit once
// told to: it drains its pipeline and closes its spool first.
const agentStopLimit = 30 * time.Second

// logLines is a child's log, passed line by line to the test's log and to
// waitLog; lines nobody waits for are dropped once 1000 are queued.
type logLines struct {
	name  string
	limit time.Duration
	lines chan string // closed at the end of the log
}

// readLog reads the log of the child called name from r. waitLog waits up
// to limit.
func readLog(t *testing.T, name string, r io.Reader, limit time.Duration) *logLines {
	l := &logLines{name: name, limit: limit, lines: make(chan string, 1000)}
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			t.Logf("%s: %s", name, sc.Text())
			select {
			case l.lines <- sc.Text():
			default:
			}
		}
		close(l.lines)
	}()
	return l
}

// waitLog waits for a log line containing s and returns it.
func (l *logLines) waitLog(t *testing.T, s string) string {
	t.Helper()
	timeout := time.After(l.limit)
	for {
		select {
		case line, ok := <-l.lines:
			if !ok {
				t.Fatalf("%s exited before logging %q", l.name, s)
			}
			if strings.Contains(line, s) {
				return line
			}
		case <-timeout:
			t.Fatalf("%s: no log line with %q", l.name, s)
		}
	}
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// metricValue reads one unlabelled series from a /metrics page.
func metricValue(t *testing.T, page, name string) float64 {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("/metrics has no %s", name)
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func freeTCPPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestAgentOperations runs the agent as systemd would and checks what an
// operator relies on: metrics during a real run, /healthz turning 503 when
// the brokers go away and 200 when they return, and SIGHUP with a good and
// with a bad configuration.
func TestAgentOperations(t *testing.T) {
	testenv.RequireRoot(t)
	const topic = "operations"
	cluster := kafkatest.Start(t, kafkatest.Options{Brokers: 3, Topic: topic, Partitions: 3, DataDir: t.TempDir()})
	dir := t.TempDir()
	metricsAddr := fmt.Sprintf("127.0.0.1:%d", freeTCPPort(t))
	cfg := agentConfig{uid: loadUID, brokers: cluster.Addrs, topic: topic, spoolDir: filepath.Join(dir, "spool"), metrics: metricsAddr}
	cfgPath := writeAgentConfig(t, dir, cfg)
	agent := runAgentProcess(t, cfgPath)
	url := "http://" + metricsAddr

	if code, body := httpGet(t, url+"/readyz"); code != 200 {
		t.Fatalf("/readyz: %d %s", code, body)
	}
	testenv.Eventually(t, "healthy", 15*time.Second, func() bool { code, _ := httpGet(t, url+"/healthz"); return code == 200 })

	// Metrics during a real run.
	binds := startLoad(t, 2000, 200*time.Millisecond).Binds(t)
	var page string
	testenv.Eventually(t, "events published", 15*time.Second, func() bool {
		_, page = httpGet(t, url+"/metrics")
		return metricValue(t, page, "bindwatch_events_published_total") >= float64(binds)
	})
	for _, series := range []string{
		"bindwatch_events_captured_total", "bindwatch_kernel_events_total", "bindwatch_event_delivery_seconds_count",
		"bindwatch_kafka_write_seconds_count", "bindwatch_batch_events_count",
	} {
		if v := metricValue(t, page, series); v <= 0 {
			t.Errorf("%s = %v during a run with %d binds", series, v, binds)
		}
	}
	for _, s := range []string{`bindwatch_hook_info{hook="`, "bindwatch_build_info{", `bindwatch_events_dropped_total{reason="queue_full"} 0`, "bindwatch_spool_bytes 0"} {
		if !strings.Contains(page, s) {
			t.Errorf("/metrics lacks %q", s)
		}
	}

	// The brokers go away: 503 with the reason; they return: 200.
	cluster.Stop()
	var body string
	testenv.Eventually(t, "/healthz 503 with Kafka down", 20*time.Second, func() bool {
		var code int
		code, body = httpGet(t, url+"/healthz")
		return code == 503
	})
	if !strings.HasPrefix(body, "kafka: ") {
		t.Errorf("/healthz with Kafka down says %q", body)
	}
	cluster.Restart(t)
	testenv.Eventually(t, "/healthz 200 with Kafka back", 20*time.Second, func() bool { code, _ := httpGet(t, url+"/healthz"); return code == 200 })

	// A good reload: a port filter that the load's ephemeral ports miss.
	_, page = httpGet(t, url+"/metrics")
	// Captured, not the kernel's sequence: the agent numbers its seals
	// (one per batch) in that sequence too.
	before := metricValue(t, page, "bindwatch_events_captured_total")
	good := cfg
	good.ports = []int{1}
	writeFile(t, cfgPath, good.yaml())
	agent.Signal(syscall.SIGHUP)
	agent.waitLog(t, "configuration reloaded")
	startLoad(t, 2000, 100*time.Millisecond).Binds(t)
	time.Sleep(200 * time.Millisecond)
	_, page = httpGet(t, url+"/metrics")
	if after := metricValue(t, page, "bindwatch_events_captured_total"); after != before {
		t.Errorf("after reloading with capture.ports [1], %v more binds were reported", after-before)
	}

	// A bad reload: refused with the reason, the agent runs on.
	writeFile(t, cfgPath, cfg.yaml()+"kafka_typo: 1\n")
	agent.Signal(syscall.SIGHUP)
	line := agent.waitLog(t, "configuration reload refused")
	if !strings.Contains(line, "kafka_typo") {
		t.Errorf("the refusal does not name the bad key: %s", line)
	}
	if code, _ := httpGet(t, url+"/healthz"); code != 200 {
		t.Errorf("/healthz %d after a refused reload", code)
	}

	if err := agent.Stop(t, syscall.SIGTERM); err != nil {
		t.Fatalf("agent after SIGTERM: %v", err)
	}
}

// TestAgentRefusesBadConfig: a configuration error at start exits with
// EX_CONFIG (78), which the unit does not restart, naming key and value.
func TestAgentRefusesBadConfig(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "bindwatch.yaml")
	if err := os.WriteFile(cfgPath, []byte("kafka:\n  acks: two\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, "run", "--config", cfgPath)
	out, err := cmd.CombinedOutput()
	exit, ok := err.(*exec.ExitError)
	if !ok || exit.ExitCode() != exitConfig {
		t.Fatalf("exit %v, want status %d; output:\n%s", err, exitConfig, out)
	}
	if !strings.Contains(string(out), `kafka.acks: "two" is not allowed; want one of all, one, none`) {
		t.Fatalf("output does not say what is wrong:\n%s", out)
	}
}
