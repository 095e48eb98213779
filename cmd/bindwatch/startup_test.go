package main

import (
	"bufio"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bindwatch/bindwatch/test/kafkatest"
	"github.com/bindwatch/bindwatch/test/testenv"
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
	cfgPath := writeAgentConfig(t, dir, agentConfig{uid: loadUID, brokers: cluster.Addrs, topic: topic, spoolDir: filepath.Join(dir, "spool")})
	cmd := exec.Command(binary, "run", "--config", cfgPath)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	agent := testenv.Start(t, cmd, agentStopLimit)
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
		t.Fatalf("agent exited before logging: %v", agent.Wait(t))
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
				err := agent.Wait(t)
				t.Fatalf("agent died during start-up after %d SIGHUPs: %v", hups, err)
			}
			check(line)
		case <-tick.C:
			if err := agent.Signal(syscall.SIGHUP); err == nil {
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
				t.Fatalf("agent exited: %v", agent.Wait(t))
			}
			check(line)
		case <-deadline:
			t.Fatal("the reload asked for during start-up was not applied")
		}
	}
	go func() {
		for range lines {
		}
	}()
	if err := agent.Stop(t, syscall.SIGTERM); err != nil {
		t.Fatalf("agent after SIGTERM: %v", err)
	}
}
