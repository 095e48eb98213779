package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/bindwatch/bindwatch/bpf"
	"github.com/bindwatch/bindwatch/test/kafkatest"
	"github.com/bindwatch/bindwatch/test/testenv"
)

// TestUnpinIfOrphanedCommand runs `bindwatch unpin --if-orphaned` as
// bindwatch-unpin.service does, against a real agent's pins: it keeps them
// while the agent runs and, once the agent stopped, while the lease runs
// (the whole default 5 minutes: the agent renews it as it stops), then,
// with the lease in the past, removes every pin and keeps the directory.
func TestUnpinIfOrphanedCommand(t *testing.T) {
	testenv.RequireRoot(t)
	const topic = "unpin"
	cluster := kafkatest.Start(t, kafkatest.Options{Brokers: 1, Topic: topic, Partitions: 1})
	dir := t.TempDir()
	pinDir := fmt.Sprintf("/sys/fs/bpf/bindwatch-test-unpin-%d", os.Getpid())
	t.Cleanup(func() { bpf.RemovePins(pinDir) })
	cfgPath := writeAgentConfig(t, dir, agentConfig{uid: loadUID, pinDir: pinDir, brokers: cluster.Addrs, topic: topic, spoolDir: filepath.Join(dir, "spool")})
	unpin := func() string {
		t.Helper()
		out, err := exec.Command(binary, "unpin", "--if-orphaned", "--config", cfgPath).CombinedOutput()
		if err != nil {
			t.Fatalf("bindwatch unpin --if-orphaned: %v\n%s", err, out)
		}
		return string(out)
	}

	agent := runAgentProcess(t, cfgPath)
	if out := unpin(); !strings.Contains(out, "kept the pins under "+pinDir+": an agent is running") {
		t.Errorf("with the agent running: %q", out)
	}
	pins, _ := os.ReadDir(pinDir)
	if err := agent.Stop(t, syscall.SIGTERM); err != nil {
		t.Fatalf("agent after SIGTERM: %v", err)
	}
	out := unpin()
	m := regexp.MustCompile(`the lease runs for (\S+) more`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("with the agent stopped: %q, want the lease's remaining time", out)
	}
	if left, err := time.ParseDuration(m[1]); err != nil || left < 4*time.Minute+58*time.Second {
		t.Errorf("the lease runs %s more after the stop, want about the whole 5m", m[1])
	}

	// As the lease would be 5 minutes on.
	lease, err := ebpf.LoadPinnedMap(filepath.Join(pinDir, "map_lease"), nil)
	if err != nil {
		t.Fatal(err)
	}
	err = lease.Put(uint32(0), uint64(1))
	lease.Close()
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("removed the %d pins under %s: the lease expired", len(pins), pinDir)
	if out := unpin(); !strings.Contains(out, want) {
		t.Errorf("after the lease: %q, want %q", out, want)
	}
	if left, err := os.ReadDir(pinDir); err != nil || len(left) != 0 {
		t.Errorf("after the unpin %s holds %d entries (%v), want an empty directory", pinDir, len(left), err)
	}
}
