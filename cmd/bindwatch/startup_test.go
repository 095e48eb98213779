package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bindwatch/bindwatch/internal/kafkatest"
	"github.com/bindwatch/bindwatch/internal/testenv"
)

// TestSIGHUPDuringStartup (issue item 7): `systemctl reload` can come while
// the agent is still starting (loading BPF, opening the spool, asking the
// registry). SIGHUP's default action is to terminate: the agent must handle
// it from its first moment, and apply the reload once it runs.
func TestSIGHUPDuringStartup(t *testing.T) {
	testenv.RequireRoot(t)
	const topic = "startup"
	cluster := kafkatest.Start(t, kafkatest.Options{Brokers: 1, Topic: topic, Partitions: 1})
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "bindwatch.yaml")
	cfg := fmt.Sprintf(`capture:
  uid: %d
  pin_dir: ""
kafka:
  brokers: [%s]
  topic: %s
spool:
  dir: %s
metrics:
  listen: ""
log:
  format: text
`, loadUID, strings.Join(cluster.Addrs, ", "), topic, filepath.Join(dir, "spool"))
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, "run", "--config", cfgPath)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	lines := make(chan string, 1000)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			t.Log(sc.Text())
			lines <- sc.Text()
		}
		close(lines)
	}()

	// From the first line the agent logs until it says it started, SIGHUP
	// it every 5 ms.
	first, ok := <-lines
	if !ok {
		t.Fatalf("agent exited before logging: %v", cmd.Wait())
	}
	hups, started, reloaded := 0, false, false
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	timeout := time.After(20 * time.Second)
	check := func(line string) {
		started = started || strings.Contains(line, "bindwatch agent started")
		reloaded = reloaded || strings.Contains(line, "configuration reloaded")
	}
	check(first)
	for !started {
		select {
		case line, ok := <-lines:
			if !ok {
				err := cmd.Wait()
				t.Fatalf("agent died during start-up after %d SIGHUPs: %v", hups, err)
			}
			check(line)
		case <-tick.C:
			if err := cmd.Process.Signal(syscall.SIGHUP); err == nil {
				hups++
			}
		case <-timeout:
			t.Fatal("agent did not start within 20s")
		}
	}
	t.Logf("%d SIGHUPs during start-up", hups)
	// A reload asked for during start-up is applied once running.
	deadline := time.After(10 * time.Second)
	for !reloaded {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("agent exited: %v", cmd.Wait())
			}
			check(line)
		case <-deadline:
			t.Fatal("the reload asked for during start-up was not applied")
		}
	}
	cmd.Process.Signal(syscall.SIGTERM)
	go func() {
		for range lines {
		}
	}()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("agent after SIGTERM: %v", err)
	}
}
