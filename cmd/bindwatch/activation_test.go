package main

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/bindwatch/bindwatch/test/kafkatest"
	"github.com/bindwatch/bindwatch/test/testenv"
)

// TestAgentSocketActivation: metrics.listen systemd serves on the socket
// the service manager bound and passed (fd 3, LISTEN_FDS=1, LISTEN_PID the
// agent's), as a socket unit's ListenStream= does. No user can take that
// port between boot and the agent's start.
func TestAgentSocketActivation(t *testing.T) {
	testenv.RequireRoot(t)
	const topic = "activation"
	cluster := kafkatest.Start(t, kafkatest.Options{Brokers: 1, Topic: topic, Partitions: 1})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	f, err := l.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	l.Close() // the agent's copy is the only one left
	dir := t.TempDir()
	cfgPath := writeAgentConfig(t, dir, agentConfig{pid: os.Getpid(), brokers: cluster.Addrs, topic: topic, spoolDir: filepath.Join(dir, "spool"), metrics: "systemd"})
	// systemd sets LISTEN_PID after the fork; a shell's exec keeps its pid.
	cmd := exec.Command("/bin/sh", "-c", `LISTEN_PID=$$ LISTEN_FDS=1 exec "$0" "$@"`, binary, "run", "--config", cfgPath)
	cmd.ExtraFiles = []*os.File{f}
	p := startAgentCmd(t, cmd)
	f.Close()

	var page string
	testenv.Eventually(t, "/metrics on the passed socket", 10*time.Second, func() bool {
		code, body := httpGet(t, "http://"+addr+"/metrics")
		page = body
		return code == 200
	})
	if v := metricValue(t, page, "bindwatch_metrics_listening"); v != 1 {
		t.Errorf("bindwatch_metrics_listening %v, want 1", v)
	}
	if code, body := httpGet(t, "http://"+addr+"/readyz"); code != 200 {
		t.Errorf("/readyz: %d %s", code, body)
	}
	p.Stop(t, os.Interrupt)
}
