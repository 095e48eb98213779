package bpf

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bindwatch/bindwatch/test/testenv"
)

func linkPins(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var links []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "link_") {
			links = append(links, e.Name())
		}
	}
	return links
}

// TestPinnedRestart plays an agent that exits with events unread and
// uncommitted, binds that happen while no agent runs, and the next agent:
// it must read every one of them, in order, numbered without a gap, and
// each bind must be reported once although two generations were attached.
func TestPinnedRestart(t *testing.T) {
	testenv.RequireRoot(t)
	for _, hook := range testHooks(t) {
		t.Run(string(hook), func(t *testing.T) { testPinnedRestart(t, hook) })
	}
}

func testPinnedRestart(t *testing.T, hook Hook) {
	mustBPFFS(t)
	dir := filepath.Join("/sys/fs/bpf", fmt.Sprintf("bindwatch-test-pins-%d", os.Getpid()))
	t.Cleanup(func() { RemovePins(dir) })
	opts := Options{Hook: hook, PinDir: dir, Filter: Filter{PID: uint32(os.Getpid())}}

	first, err := Load(opts)
	if err != nil {
		t.Fatal(err)
	}
	if !first.Pinned() || first.Generation() != 1 {
		t.Fatalf("first agent: pinned %v, generation %d", first.Pinned(), first.Generation())
	}
	rd, err := first.NewReader()
	if err != nil {
		t.Fatal(err)
	}
	seq0 := must(first.NextSeq())
	bindN(t, 3)
	readSeqs(t, rd, 1)
	rd.Commit(rd.Position()) // one delivered; two read or unread, not safe
	rd.Close()
	first.Close() // the agent exits (or is killed): pins stay

	bindN(t, 2) // while no agent runs

	second, err := Load(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	if second.Generation() != 2 {
		t.Fatalf("second agent generation %d, want 2", second.Generation())
	}
	links := linkPins(t, dir)
	for _, l := range links {
		if !strings.HasPrefix(l, "link_2_") {
			t.Errorf("link %s of the first agent still pinned", l)
		}
	}
	if len(links) == 0 {
		t.Fatal("second agent pinned no links")
	}
	rd2, err := second.NewReader()
	if err != nil {
		t.Fatal(err)
	}
	defer rd2.Close()
	before := must(second.NextSeq())
	bindN(t, 1) // with both generations' programs having been attached: once
	if after := must(second.NextSeq()); after != before+1 {
		t.Fatalf("one bind after the restart numbered %d times", after-before)
	}
	got := readSeqs(t, rd2, 5)
	want := []uint64{seq0 + 1, seq0 + 2, seq0 + 3, seq0 + 4, seq0 + 5}
	if !equal(got, want) {
		t.Fatalf("second agent read seqs %v, want %v: the two undelivered, the two made while down, the new one", got, want)
	}

	if err := RemovePins(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("%s still there after RemovePins: %v", dir, err)
	}
}

// TestFreshCounterDoesNotReuseNumbers: a counter created after another one of
// this boot went away (unpinned) starts above every number it handed out.
func TestFreshCounterDoesNotReuseNumbers(t *testing.T) {
	testenv.RequireRoot(t)
	a, err := Load(Options{Filter: Filter{PID: uint32(os.Getpid())}})
	if err != nil {
		t.Fatal(err)
	}
	bindN(t, 3)
	last := must(a.NextSeq())
	a.Close()
	b, err := Load(Options{Filter: Filter{PID: uint32(os.Getpid())}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if next := must(b.NextSeq()); next <= last {
		t.Fatalf("a fresh counter starts at %d, at or below the %d an earlier one reached", next, last)
	}
}
