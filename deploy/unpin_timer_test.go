package deploy_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"github.com/bindwatch/bindwatch/internal/gaps"
	"github.com/bindwatch/bindwatch/schemas/codec"
	"github.com/bindwatch/bindwatch/test/kafkatest"
	"github.com/bindwatch/bindwatch/test/testenv"
)

// timerDropIn makes bindwatch-unpin.timer fire every 2 s instead of every
// 5 min, so that the test waits seconds, not minutes. An empty OnBootSec=
// resets every trigger of the timer.
const timerDropIn = "[Timer]\nOnBootSec=\nOnActiveSec=1s\nOnUnitActiveSec=2s\nAccuracySec=1ms\n"

// testOrphanTimeout is the shortest lease the configuration allows.
const testOrphanTimeout = 30 * time.Second

const eventsTopic = "bindwatch.bind-events"

// shortenLease sets capture.orphan_timeout to testOrphanTimeout and capture.uid
// to the load generator's user (other tests on this host bind too: a storm
// of theirs must not fill the ring while the agent is stopped), makes the
// timer fire every 2 s, and restarts both.
func (e *lifecycle) shortenLease(t *testing.T) {
	conf := filepath.Join(e.root, "etc/bindwatch/bindwatch.yaml")
	text := testenv.ReadFile(t, conf)
	edited := strings.Replace(text, "  orphan_timeout: 5m0s\n", "  orphan_timeout: "+testOrphanTimeout.String()+"\n", 1)
	edited = regexp.MustCompile(`(?m)^  uid: -?\d+\n`).ReplaceAllString(edited, "  uid: "+strconv.Itoa(testenv.UserPackageLoad)+"\n")
	if !strings.Contains(edited, "orphan_timeout: 30s") || !strings.Contains(edited, "  uid: "+strconv.Itoa(testenv.UserPackageLoad)+"\n") {
		t.Fatalf("the conffile has no orphan_timeout or uid line to edit:\n%s", text)
	}
	if err := os.WriteFile(conf, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	dropIn := filepath.Join(e.root, "etc/systemd/system/bindwatch-unpin.timer.d")
	if err := os.MkdirAll(dropIn, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dropIn, "test.conf"), []byte(timerDropIn), 0o644); err != nil {
		t.Fatal(err)
	}
	e.c.run(t, "systemctl", "daemon-reload")
	e.c.run(t, "systemctl", "restart", "bindwatch", "bindwatch-unpin.timer")
	waitPublished(t, e.metrics, 1)
}

// unpinJournal is what bindwatch-unpin.service said since a moment, from
// the container's journal (which keeps the earlier formats' runs).
func (e *lifecycle) unpinJournal(since time.Time) string {
	return e.c.try("journalctl", "-u", "bindwatch-unpin.service", "--no-pager", "-o", "cat",
		fmt.Sprintf("--since=@%d", since.Unix()))
}

// timerKeepsRestartingAgent: with the timer firing every 2 s, the agent is
// stopped (as for an upgrade or a restart) while a load generator binds,
// left stopped for several of the timer's runs within its lease, and
// started again: the unpin refused each time (the lease ran), the pinned
// maps are the same objects, and Kafka has every bind, the sequence
// without a gap across the restart.
func (e *lifecycle) timerKeepsRestartingAgent(t *testing.T) {
	c := e.c
	if got := c.try("systemctl", "is-active", "bindwatch-unpin.timer"); got != "active" {
		t.Fatalf("bindwatch-unpin.timer is %q, want active", got)
	}
	// While the agent runs, the condition skips the unpin altogether.
	begin := time.Now().Add(-time.Second)
	c.try("systemctl", "start", "bindwatch-unpin.service")
	if j := e.unpinJournal(begin); !strings.Contains(j, "bindwatch.service is active: not unpinning") {
		t.Errorf("with the agent active the unpin's condition did not skip it:\n%s", j)
	}
	pinned := pinnedMaps(t, e.pins)
	// The sequence is checked from here: before capture.uid took effect
	// every bind on this shared host was captured, and a storm of another
	// test's can overflow the ring then, which is not this step's business.
	from := uint64(counter(t, e.metrics, "bindwatch_kernel_events_total"))

	load := startLoad(t, 200, 14*time.Second)
	time.Sleep(2 * time.Second)
	c.run(t, "systemctl", "stop", "bindwatch")
	stopped := time.Now()
	// Several runs of the timer while no agent runs, within the lease.
	testenv.Eventually(t, "three unpin runs with the agent stopped", 20*time.Second, func() error {
		if n := strings.Count(e.unpinJournal(stopped), "kept the pins"); n < 3 {
			return fmt.Errorf("%d runs so far", n)
		}
		return nil
	})
	if j := e.unpinJournal(stopped); !strings.Contains(j, "the lease runs for") || strings.Contains(j, "removed the") {
		t.Errorf("the unpin did not keep the pins for the lease:\n%s", j)
	}
	if now := pinnedMaps(t, e.pins); !pinned.Equal(now) {
		t.Fatalf("pinned maps before the stop %v, after %v: the timer unpinned a capture within its lease", pinned, now)
	}
	c.run(t, "systemctl", "start", "bindwatch")
	t.Logf("agent stopped for %v", time.Since(stopped).Round(100*time.Millisecond))
	pid := load.Cmd.Process.Pid
	binds := load.Binds(t)
	waitPublished(t, e.metrics, 1)
	if now := pinnedMaps(t, e.pins); !pinned.Equal(now) {
		t.Errorf("pinned maps before the stop %v, after the start %v", pinned, now)
	}
	checkTopic(t, e.brokers, pid, binds, from)
}

// timerUnpinsStoppedAgent: stopped and disabled, the agent's capture stays
// pinned for the lease, then the timer removes the pins, the directory
// stays (the unit could not make it again), and the programs its links held
// are gone from the kernel.
func (e *lifecycle) timerUnpinsStoppedAgent(t *testing.T) {
	c := e.c
	progs := linkedPrograms(t, e.pins)
	// Before the command: the agent renews the lease as it stops.
	stopped := time.Now()
	c.run(t, "systemctl", "disable", "--now", "bindwatch")
	time.Sleep(5 * time.Second)
	if entries, _ := os.ReadDir(e.pins); len(entries) == 0 {
		t.Fatalf("pins gone %v after the stop, within the %v lease", time.Since(stopped).Round(time.Second), testOrphanTimeout)
	}
	// The lease, the timer's 2 s, and room for a loaded host.
	testenv.Eventually(t, "the timer unpinning the capture", testOrphanTimeout+30*time.Second, func() error {
		if entries, err := os.ReadDir(e.pins); err != nil || len(entries) > 0 {
			return fmt.Errorf("%d pins, %v", len(entries), err)
		}
		return nil
	})
	gone := time.Since(stopped)
	t.Logf("pins gone %v after the agent stopped (lease %v, timer every 2 s)", gone.Round(100*time.Millisecond), testOrphanTimeout)
	if gone < testOrphanTimeout {
		t.Errorf("pins removed %v after the stop, before the %v lease ran out", gone, testOrphanTimeout)
	}
	if j := e.unpinJournal(stopped); !regexp.MustCompile(`removed the \d+ pins under /sys/fs/bpf/bindwatch: the lease expired`).MatchString(j) {
		t.Errorf("the unpin's journal does not say it removed the pins:\n%s", j)
	}
	if fi, err := os.Stat(e.pins); err != nil || !fi.IsDir() {
		t.Errorf("the pin directory itself is gone: %v", err)
	}
	for _, id := range progs {
		testenv.Eventually(t, fmt.Sprintf("program %d gone", id), 10*time.Second, func() error {
			p, err := ebpf.NewProgramFromID(id)
			if err != nil {
				return nil
			}
			p.Close()
			return fmt.Errorf("program %d is still loaded", id)
		})
	}
	// As an administrator would before dpkg -r: the removal's steps expect
	// an enabled unit to come back enabled on a reinstall.
	c.run(t, "systemctl", "enable", "bindwatch")
}

// linkedPrograms are the ids of the programs the links pinned in dir hold.
func linkedPrograms(t *testing.T, dir string) []ebpf.ProgramID {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var ids []ebpf.ProgramID
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "link_") {
			continue
		}
		l, err := link.LoadPinnedLink(filepath.Join(dir, e.Name()), nil)
		if err != nil {
			t.Fatalf("opening pinned link %s: %v", e.Name(), err)
		}
		info, err := l.Info()
		l.Close()
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, info.Program)
	}
	if len(ids) == 0 {
		t.Fatalf("no pinned links in %s", dir)
	}
	return ids
}

// checkTopic reads the whole events topic: every one of the load
// generator's binds is there, and no host's sequence has a gap from the
// number from on.
func checkTopic(t *testing.T, brokers string, pid, binds int, from uint64) {
	t.Helper()
	dec, err := codec.NewDecoder("")
	if err != nil {
		t.Fatal(err)
	}
	var msgs int
	seen := map[string]bool{}
	tracker := gaps.NewTracker()
	testenv.Eventually(t, fmt.Sprintf("the load generator's %d binds on the topic", binds), 30*time.Second, func() error {
		n := int(kafkatest.Count(t, []string{brokers}, eventsTopic))
		if n == msgs {
			return fmt.Errorf("%d of %d binds", len(seen), binds)
		}
		msgs = n
		clear(seen)
		tracker = gaps.NewTracker()
		for _, m := range kafkatest.ReadAll(t, []string{brokers}, eventsTopic, n, 30*time.Second) {
			rec, err := dec.Decode(context.Background(), m.Value)
			if err != nil {
				t.Fatal(err)
			}
			f := map[string]string{}
			for _, fl := range rec.Fields {
				f[fl.Name] = fmt.Sprint(fl.Value)
			}
			seq, err := strconv.ParseUint(f["seq"], 10, 64)
			if err != nil {
				t.Fatalf("seq %q: %v", f["seq"], err)
			}
			if seq >= from {
				tracker.Add(f["host"], f["host_id"], f["boot_id"], seq)
			}
			if f["kind"] == "bind" && f["pid"] == strconv.Itoa(pid) {
				seen[f["seq"]] = true
			}
		}
		if len(seen) < binds {
			return fmt.Errorf("%d of %d binds in %d messages", len(seen), binds, n)
		}
		return nil
	})
	if len(seen) != binds {
		t.Errorf("%d distinct bind records of the load generator (pid %d) for its %d binds", len(seen), pid, binds)
	}
	for _, r := range tracker.Reports() {
		t.Logf("topic: %s", r)
		if r.MissingCount() > 0 {
			t.Errorf("a gap across the restart: %s", r)
		}
	}
}

// startLoad is test/loadgen binding UDP as testenv.UserPackageLoad from
// the host (the container shares its kernel and network).
func startLoad(t *testing.T, rate int, d time.Duration) *testenv.Loadgen {
	t.Helper()
	return testenv.StartLoadgen(t, "../test/loadgen", testenv.WorldReadableDir(t), testenv.UserPackageLoad, rate, d)
}
