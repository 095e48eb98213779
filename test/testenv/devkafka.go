package testenv

import (
	"bufio"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// StartDevkafka builds cmd/devkafka (devkafkaPkg: its path from the test's
// directory, such as "../cmd/devkafka") into dir, runs one broker of it on a
// loopback port of its own with the events topic, stops it when the test
// ends, and returns the broker's address.
func StartDevkafka(t *testing.T, dir, devkafkaPkg string) string {
	t.Helper()
	exe := filepath.Join(dir, "devkafka")
	if out, err := exec.Command("go", "build", "-o", exe, devkafkaPkg).CombinedOutput(); err != nil {
		t.Fatalf("building devkafka: %v\n%s", err, out)
	}
	cmd := exec.Command(exe, "--listen", "127.0.0.1:0", "--brokers", "1", "--topic", "bindwatch.bind-events")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(unix.SIGTERM)
		cmd.Wait()
	})
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "broker "); ok {
				ready <- a
			}
		}
		io.Copy(io.Discard, stdout)
	}()
	select {
	case a := <-ready:
		return a
	case <-time.After(20 * time.Second):
		t.Fatal("devkafka did not start within 20 s")
		return ""
	}
}
