package bpf

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bindwatch/bindwatch/test/testenv"
)

// TestLeftoversFindsPinnedCapture: a pinned probe shows in Leftovers (its
// directory and its programs) until it is unpinned and closed; what make
// test's kernel check relies on.
func TestLeftoversFindsPinnedCapture(t *testing.T) {
	testenv.RequireRoot(t)
	dir := filepath.Join("/sys/fs/bpf", fmt.Sprintf("bindwatch-leftover-test-%d", os.Getpid()))
	t.Cleanup(func() { RemovePins(dir) })
	p, err := Load(Options{Hook: HookAuto, Filter: Filter{PID: uint32(os.Getpid())}, PinDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	info, err := p.coll.Programs[programsOf[p.Hook()].base[0].program].Info()
	if err != nil {
		t.Fatal(err)
	}
	id, _ := info.ID()
	mine := []string{"pinned: " + dir, fmt.Sprintf("program %d: ", id)}
	has := func(found []string, want string) bool {
		return slices.ContainsFunc(found, func(f string) bool { return strings.HasPrefix(f, want) })
	}
	found, err := Leftovers("/sys/fs/bpf")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range mine {
		if !has(found, m) {
			t.Errorf("Leftovers %v lacks %q", found, m)
		}
	}
	// Closed but still pinned: the link keeps the program attached.
	p.Close()
	if found, _ = Leftovers("/sys/fs/bpf"); !has(found, mine[1]) {
		t.Errorf("a closed but pinned probe's program is not listed: %v", found)
	}
	if err := RemovePins(dir); err != nil {
		t.Fatal(err)
	}
	// The kernel frees a program a moment after its last reference goes.
	testenv.Eventually(t, "the unpinned programs freed", 5*time.Second, func() error {
		if found, _ = Leftovers("/sys/fs/bpf"); has(found, mine[0]) || has(found, mine[1]) {
			return fmt.Errorf("after unpinning, Leftovers still lists %v", found)
		}
		return nil
	})
}
