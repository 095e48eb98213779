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

	"github.com/bindwatch/bindwatch/internal/kafkatest"
	"github.com/bindwatch/bindwatch/internal/testenv"
)

// agentProcess is `bindwatch run` with its log lines readable by the test.
type agentProcess struct {
	cmd   *exec.Cmd
	lines chan string
}

func runAgentProcess(t *testing.T, cfgPath string) *agentProcess {
	t.Helper()
	return startAgentCmd(t, exec.Command(binary, "run", "--config", cfgPath))
}

// startAgentCmd starts cmd, a prepared `bindwatch run`, and waits until the
// agent says it started.
func startAgentCmd(t *testing.T, cmd *exec.Cmd) *agentProcess {
	t.Helper()
	p := &agentProcess{cmd: cmd, lines: make(chan string, 1000)}
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.cmd.Process.Kill() })
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			t.Log(sc.Text())
			select {
			case p.lines <- sc.Text():
			default:
			}
		}
		close(p.lines)
	}()
	p.waitLog(t, "bindwatch agent started")
	return p
}

// waitLog waits for a log line containing s.
func (p *agentProcess) waitLog(t *testing.T, s string) string {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case line, ok := <-p.lines:
			if !ok {
				t.Fatalf("agent exited before logging %q", s)
			}
			if strings.Contains(line, s) {
				return line
			}
		case <-timeout:
			t.Fatalf("no log line with %q", s)
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

func eventually(t *testing.T, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, limit)
		}
		time.Sleep(100 * time.Millisecond)
	}
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
	base := fmt.Sprintf(`capture:
  uid: %d
  pin_dir: ""
kafka:
  brokers: [%s]
  topic: %s
spool:
  dir: %s
metrics:
  listen: %s
log:
  format: text
`, loadUID, strings.Join(cluster.Addrs, ", "), topic, filepath.Join(dir, "spool"), metricsAddr)
	cfgPath := filepath.Join(dir, "bindwatch.yaml")
	write := func(s string) {
		if err := os.WriteFile(cfgPath, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(base)
	agent := runAgentProcess(t, cfgPath)
	url := "http://" + metricsAddr

	if code, body := httpGet(t, url+"/readyz"); code != 200 {
		t.Fatalf("/readyz: %d %s", code, body)
	}
	eventually(t, "healthy", 15*time.Second, func() bool { code, _ := httpGet(t, url+"/healthz"); return code == 200 })

	// Metrics during a real run.
	binds := startLoad(t, 2000, 200*time.Millisecond).wait(t)
	var page string
	eventually(t, "events published", 15*time.Second, func() bool {
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
	eventually(t, "/healthz 503 with Kafka down", 20*time.Second, func() bool {
		var code int
		code, body = httpGet(t, url+"/healthz")
		return code == 503
	})
	if !strings.HasPrefix(body, "kafka: ") {
		t.Errorf("/healthz with Kafka down says %q", body)
	}
	cluster.Restart(t)
	eventually(t, "/healthz 200 with Kafka back", 20*time.Second, func() bool { code, _ := httpGet(t, url+"/healthz"); return code == 200 })

	// A good reload: a port filter that the load's ephemeral ports miss.
	_, page = httpGet(t, url+"/metrics")
	before := metricValue(t, page, "bindwatch_kernel_events_total")
	write(strings.Replace(base, "  uid:", "  ports: [1]\n  uid:", 1))
	agent.cmd.Process.Signal(syscall.SIGHUP)
	agent.waitLog(t, "configuration reloaded")
	startLoad(t, 2000, 100*time.Millisecond).wait(t)
	time.Sleep(200 * time.Millisecond)
	_, page = httpGet(t, url+"/metrics")
	if after := metricValue(t, page, "bindwatch_kernel_events_total"); after != before {
		t.Errorf("after reloading with capture.ports [1], %v more binds were reported", after-before)
	}

	// A bad reload: refused with the reason, the agent runs on.
	write(base + "kafka_typo: 1\n")
	agent.cmd.Process.Signal(syscall.SIGHUP)
	line := agent.waitLog(t, "configuration reload refused")
	if !strings.Contains(line, "kafka_typo") {
		t.Errorf("the refusal does not name the bad key: %s", line)
	}
	if code, _ := httpGet(t, url+"/healthz"); code != 200 {
		t.Errorf("/healthz %d after a refused reload", code)
	}

	agent.cmd.Process.Signal(syscall.SIGTERM)
	if err := agent.cmd.Wait(); err != nil {
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
