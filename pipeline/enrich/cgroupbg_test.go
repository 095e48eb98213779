package enrich

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/bindwatch/bindwatch/bpf"
	"github.com/bindwatch/bindwatch/schemas"
	"github.com/bindwatch/bindwatch/test/testenv"
)

func TestCgroupIndexScan(t *testing.T) {
	tr := newCgroupTree(t, dockerInit, k8sLeaf, nginx)
	x := newCgroupIndex(tr.mount)
	n, _, err := x.scan()
	if err != nil {
		t.Fatal(err)
	}
	// ., system.slice, the docker scope, its init.scope, nginx.service and
	// kubepods/burstable/pod…/<id>: control files are not cgroups.
	if n != 9 {
		t.Errorf("%d cgroups indexed, want 9", n)
	}
	for _, d := range []string{".", "system.slice", dockerScope, dockerInit, nginx, k8sLeaf} {
		if rel, ok := x.lookup(tr.id(d)); !ok || rel != d {
			t.Errorf("%s: indexed as %q, %v", d, rel, ok)
		}
	}
	// A cgroup made after the scan is found by the next one; a removed one
	// is gone from it.
	if err := os.Mkdir(filepath.Join(tr.mount, "late.slice"), 0o755); err != nil {
		t.Fatal(err)
	}
	late := tr.id("late.slice")
	if _, ok := x.lookup(late); ok {
		t.Fatal("found before a scan")
	}
	gone := tr.id(nginx)
	if err := os.RemoveAll(filepath.Join(tr.mount, nginx)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := x.scan(); err != nil {
		t.Fatal(err)
	}
	if rel, ok := x.lookup(late); !ok || rel != "late.slice" {
		t.Errorf("late.slice after a scan: %q, %v", rel, ok)
	}
	if _, ok := x.lookup(gone); ok {
		t.Error("removed cgroup still indexed")
	}
	// A bounded scan stops at its bound and says so.
	x.maxDirs = 3
	if n, _, err := x.scan(); err == nil || n != 3 {
		t.Errorf("bounded scan: %d cgroups, err %v; want 3 and an error", n, err)
	}
}

func TestParseDirentsTruncated(t *testing.T) {
	// A record claiming more bytes than the buffer holds ends the parse.
	b := make([]byte, 24)
	b[16], b[18] = 200, 4
	parseDirents(b, func(string, uint64) { t.Error("parsed a truncated record") })
}

// bootProc gives the fixture procfs of tr the boot id New reads.
func bootProc(t *testing.T, tr *cgroupTree) {
	t.Helper()
	b, err := os.ReadFile("testdata/proc/sys/kernel/random/boot_id")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(tr.proc, "sys/kernel/random")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "boot_id"), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// A cgroup made after the index was built, whose process is gone: the
// event path does not wait for it, the record goes on without a container
// and the background resolver finds it for the records after.
func TestCgroupResolvedInBackground(t *testing.T) {
	tr := newCgroupTree(t, "system.slice")
	bootProc(t, tr)
	e, err := New(Config{RootFS: "testdata/host", ProcRoot: tr.proc, CgroupRoot: tr.mount,
		CgroupRescanInterval: 10 * time.Millisecond, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(tr.mount, dockerScope), 0o755); err != nil {
		t.Fatal(err)
	}
	id := tr.id(dockerScope)
	in := make(chan bpf.Event)
	out, errc := runEnricher(t, e, t.Context(), in)
	defer func() {
		close(in)
		for range out {
		}
		if err := <-errc; err != nil {
			t.Error(err)
		}
	}()

	in <- bpf.Event{Seq: 1, CgroupID: id, PID: 777, PPID: 1, Family: bpf.AFInet}
	if rec := <-out; rec.ContainerID != nil {
		t.Fatalf("first record: container %q before any scan", *rec.ContainerID)
	}
	seq := uint64(1)
	testenv.Eventually(t, "resolved in the background", 10*time.Second, func() error {
		seq++
		in <- bpf.Event{Seq: seq, CgroupID: id, PID: 777, PPID: 1, Family: bpf.AFInet}
		if rec := <-out; deref(rec.ContainerID) != idA {
			return fmt.Errorf("container %q; stats %+v", deref(rec.ContainerID), e.Stats())
		}
		return nil
	})
	if st := e.Stats(); st.CgroupDeferred != 1 || st.CgroupScans < 1 {
		t.Errorf("stats %+v: want one id deferred, at least one scan", st)
	}
}

// Thousands of distinct unknown ids at once: none waits, the queue bounds
// what is asked, and one scan answers all that were waiting.
func TestCgroupBackgroundIsBounded(t *testing.T) {
	tr := newCgroupTree(t, "system.slice")
	bootProc(t, tr)
	e, err := New(Config{RootFS: "testdata/host", ProcRoot: tr.proc, CgroupRoot: tr.mount,
		CgroupRescanInterval: time.Hour, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	const ids = 3 * cgroupQueueSize
	var rec schemas.BindEvent
	start := time.Now()
	for i := range ids {
		e.Enrich(&bpf.Event{CgroupID: 1<<40 + uint64(i), PID: 777, Family: bpf.AFInet}, &rec)
		if rec.ContainerID != nil {
			t.Fatal("an unknown id got a container")
		}
	}
	took := time.Since(start)
	st := e.Stats()
	if st.CgroupDeferred != cgroupQueueSize || st.CgroupQueueFull != ids-cgroupQueueSize {
		t.Errorf("stats %+v: want %d deferred, %d refused by the full queue", st, cgroupQueueSize, ids-cgroupQueueSize)
	}
	t.Logf("%d unknown ids enriched in %v (%v each)", ids, took, took/ids)

	// Served by one scan, spaced an hour from the next.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go e.cgroupBG.run(ctx)
	testenv.Eventually(t, "every waiting id answered", 10*time.Second, func() error {
		if n := len(e.pending); n > 0 {
			e.collectCgroups()
			return fmt.Errorf("%d ids still pending", n)
		}
		return nil
	})
	if st := e.Stats(); st.CgroupScans != 1 || st.CgroupUnknown != cgroupQueueSize {
		t.Errorf("stats %+v: want 1 scan answering %d ids unknown", st, cgroupQueueSize)
	}
	// Answered ids are cached as unknown: no new request for them.
	e.Enrich(&bpf.Event{CgroupID: 1 << 40, PID: 777, Family: bpf.AFInet}, &rec)
	if st := e.Stats(); st.CgroupDeferred != cgroupQueueSize {
		t.Errorf("a cached unknown id was asked about again: %+v", st)
	}
}
