package enrich

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/bindwatch/bindwatch/bpf"
	"github.com/bindwatch/bindwatch/internal/testenv"
	"github.com/bindwatch/bindwatch/schemas"
)

// testCgroupSubtree makes a cgroup of the test's own under the cgroup2 mount
// and removes it, with everything made under it, at the end even when the
// test fails.
func testCgroupSubtree(t *testing.T, name string) string {
	t.Helper()
	testenv.RequireRoot(t)
	mount := testenv.Cgroup2Mount(t)
	base := filepath.Join(mount, fmt.Sprintf("bindwatch-test-%s-%d", name, os.Getpid()))
	t.Cleanup(func() { removeCgroupTree(t, base) })
	if err := os.Mkdir(base, 0o755); err != nil {
		t.Fatal(err)
	}
	return base
}

// removeCgroupTree removes the cgroup directories under dir, deepest first
// (cgroupfs refuses to remove a cgroup that has children; its control
// files go with it).
func removeCgroupTree(t *testing.T, dir string) {
	var dirs []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := os.Remove(dirs[i]); err != nil && !os.IsNotExist(err) {
			t.Errorf("removing test cgroup: %v", err)
		}
	}
}

// TestNativeShortLivedCgroupsDoNotDelayEvents is the attack of a user with a
// delegated subtree of 20 000 cgroups who binds from 100 short-lived
// children, each in a fresh cgroup removed as it exits: ids that neither
// /proc nor any directory can resolve any more. Interleaved with them go
// events of a live process in a known cgroup. Those must come out of the
// enricher without delay, and the unknown ones too, container null.
func TestNativeShortLivedCgroupsDoNotDelayEvents(t *testing.T) {
	const groups, perGroup, fresh, others = 100, 200, 100, 10
	base := testCgroupSubtree(t, "cgload")
	start := time.Now()
	for g := range groups {
		gdir := filepath.Join(base, fmt.Sprintf("user-%03d", g))
		if err := os.Mkdir(gdir, 0o755); err != nil {
			t.Fatal(err)
		}
		for c := range perGroup {
			if err := os.Mkdir(filepath.Join(gdir, fmt.Sprintf("c%03d", c)), 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Logf("%d cgroups made in %v", groups*perGroup, time.Since(start).Round(time.Millisecond))

	// The children's cgroups, made and removed: their ids are real.
	var freshIDs []uint64
	for i := range fresh {
		dir := filepath.Join(base, fmt.Sprintf("child-%03d", i))
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		id, err := cgroupDirID(dir)
		if err != nil {
			t.Fatal(err)
		}
		freshIDs = append(freshIDs, id)
		if err := os.Remove(dir); err != nil {
			t.Fatal(err)
		}
	}
	// The live process's cgroup, named like a Docker container's.
	var raw [32]byte
	rand.Read(raw[:])
	cid := hex.EncodeToString(raw[:])
	live := filepath.Join(base, "docker-"+cid+".scope")
	if err := os.Mkdir(live, 0o755); err != nil {
		t.Fatal(err)
	}
	child := startSleeper(t, "sleep", "120")
	if err := os.WriteFile(filepath.Join(live, "cgroup.procs"), fmt.Appendf(nil, "%d", child.Process.Pid), 0o644); err != nil {
		t.Fatal(err)
	}
	liveID, err := cgroupDirID(live)
	if err != nil {
		t.Fatal(err)
	}

	e, err := New(Config{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	in := make(chan bpf.Event, 4096)
	out := make(chan schemas.BindEvent, 4096)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx, in, out) }()

	// One unknown id then ten known ones, an event every 500 µs.
	total := fresh * (1 + others)
	sent := make([]time.Time, total)
	got := make([]time.Duration, total)
	var liveRecs []schemas.BindEvent
	recvDone := make(chan struct{})
	go func() {
		defer close(recvDone)
		for rec := range out {
			got[rec.Seq] = time.Since(sent[rec.Seq])
			if rec.CgroupID == int64(liveID) {
				liveRecs = append(liveRecs, rec)
			}
		}
	}()
	tick := time.NewTicker(500 * time.Microsecond)
	for seq := range total {
		<-tick.C
		ev := bpf.Event{Seq: uint64(seq), Family: bpf.AFInet, Comm: comm("sleep"),
			CgroupID: liveID, PID: uint32(child.Process.Pid), PPID: uint32(os.Getpid())}
		if seq%(1+others) == 0 {
			ev.CgroupID, ev.PID, ev.PPID = freshIDs[seq/(1+others)], 0, 0
		}
		sent[seq] = time.Now()
		in <- ev
	}
	tick.Stop()
	close(in)
	select {
	case <-recvDone:
	case <-time.After(3 * time.Minute):
		t.Fatal("the enricher did not finish 3 minutes after the last event")
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	var known, unknown []time.Duration
	for seq, d := range got {
		if seq%(1+others) == 0 {
			unknown = append(unknown, d)
		} else {
			known = append(known, d)
		}
	}
	q := func(ds []time.Duration, p float64) time.Duration {
		s := slices.Clone(ds)
		slices.Sort(s)
		return s[int(p*float64(len(s)-1))]
	}
	t.Logf("known cgroup (%d events): p50 %v p99 %v max %v", len(known), q(known, .5), q(known, .99), q(known, 1))
	t.Logf("unknown cgroup (%d events): p50 %v p99 %v max %v", len(unknown), q(unknown, .5), q(unknown, .99), q(unknown, 1))
	t.Logf("stats %+v", e.Stats())
	// Generous for a loaded 2-core CI host; a cache hit takes microseconds.
	const bound = 250 * time.Millisecond
	if m := q(known, 1); m > bound {
		t.Errorf("events of a known cgroup waited up to %v behind unknown ids; want under %v", m, bound)
	}
	if m := q(unknown, 1); m > bound {
		t.Errorf("events of unknown cgroups waited up to %v; want under %v", m, bound)
	}
	for _, rec := range liveRecs {
		if deref(rec.ContainerID) != cid {
			t.Errorf("live container's event %d: container %q, want %q", rec.Seq, deref(rec.ContainerID), cid)
			break
		}
	}
}
