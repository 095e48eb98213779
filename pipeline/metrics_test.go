package pipeline

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bindwatch/bindwatch/test/kafkatest"
	"github.com/bindwatch/bindwatch/test/testenv"
)

// gauge reads one unlabelled series from the agent's registry, which is
// what /metrics would show if it could be reached.
func gauge(t *testing.T, a *runningAgent, name string) float64 {
	t.Helper()
	mfs, err := a.metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		m := mf.GetMetric()[0]
		if g := m.GetGauge(); g != nil {
			return g.GetValue()
		}
		return m.GetCounter().GetValue()
	}
	t.Fatalf("no series %s", name)
	return 0
}

// get fetches url with client, "" on any failure.
func get(client *http.Client, url string) string {
	resp, err := client.Get(url)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return ""
	}
	return string(b)
}

// TestMetricsPortTakenFirst is the attack: another user listens on the
// metrics port before the agent starts. Start used to fail on it, and
// systemd's restarts then used up the start limit with capture off. The
// agent must capture and publish all the same, say the endpoint is down,
// and take the port once it is free.
func TestMetricsPortTakenFirst(t *testing.T) {
	testenv.RequireRoot(t)
	const topic, n = "metrics-squat", 20
	squatter, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer squatter.Close()
	addr := squatter.Addr().String()
	cluster := kafkatest.Start(t, kafkatest.Options{Brokers: 1, Topic: topic, Partitions: 1})
	cfg := testConfig(t, cluster.Addrs, topic)
	cfg.Metrics.Listen = addr
	agent := runAgent(t, &cfg, testLogger(t))

	for range n {
		if err := bindOnce(); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Eventually(t, "every event published", 15*time.Second, func() bool { return agent.Stats().Publish.Published.Load() >= n })
	if got := kafkatest.Count(t, cluster.Addrs, topic); got < n {
		t.Fatalf("topic holds %d events, want %d", got, n)
	}
	if v := gauge(t, agent, "bindwatch_metrics_listening"); v != 0 {
		t.Errorf("bindwatch_metrics_listening %v while the port is taken, want 0", v)
	}
	if v := gauge(t, agent, "bindwatch_metrics_listen_errors_total"); v < 1 {
		t.Errorf("bindwatch_metrics_listen_errors_total %v, want at least 1", v)
	}

	squatter.Close()
	start := time.Now()
	var page string
	testenv.Eventually(t, "/metrics served once the port is free", 40*time.Second, func() bool {
		page = get(http.DefaultClient, "http://"+addr+"/metrics")
		return page != ""
	})
	t.Logf("endpoint up %v after the port was freed", time.Since(start).Round(10*time.Millisecond))
	for _, want := range []string{"bindwatch_metrics_listening 1", "bindwatch_events_published_total"} {
		if !strings.Contains(page, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	agent.stop(t)
}

// TestMetricsUnixSocket: metrics.listen unix:/path serves /metrics and
// /healthz on a socket of mode 0660, which no other user can take or reach.
func TestMetricsUnixSocket(t *testing.T) {
	testenv.RequireRoot(t)
	const topic = "metrics-unix"
	cluster := kafkatest.Start(t, kafkatest.Options{Brokers: 1, Topic: topic, Partitions: 1})
	cfg := testConfig(t, cluster.Addrs, topic)
	path := filepath.Join(t.TempDir(), "metrics.sock")
	// A stale socket of an earlier agent is replaced.
	stale, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	stale.(*net.UnixListener).SetUnlinkOnClose(false)
	stale.Close()
	cfg.Metrics.Listen = "unix:" + path
	agent := runAgent(t, &cfg, testLogger(t))
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", path)
		},
	}}
	var page string
	testenv.Eventually(t, "/metrics served on the unix socket", 10*time.Second, func() bool {
		page = get(client, "http://bindwatch/metrics")
		return page != ""
	})
	if !strings.Contains(page, "bindwatch_metrics_listening 1") {
		t.Errorf("/metrics over the socket lacks bindwatch_metrics_listening 1")
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o660 || fi.Mode().Type() != os.ModeSocket {
		t.Errorf("socket mode %v, want a socket of mode 0660", fi.Mode())
	}
	agent.stop(t)
	if _, err := os.Stat(path); err == nil {
		t.Error("socket left behind after the agent stopped")
	}
}
