package bpf

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/bindwatch/bindwatch/test/testenv"
)

// TestPinsSurviveRingResize (issue item 7): capture.ring_buffer_bytes
// changed while pins are present. The old ring cannot be reused, so its pins
// go, but the pin directory itself must stay (under the unit, /sys is
// read-only but for it, so a removed directory cannot be made again), and
// the new agent must start and capture.
func TestPinsSurviveRingResize(t *testing.T) {
	testenv.RequireRoot(t)
	mustBPFFS(t)
	dir := filepath.Join("/sys/fs/bpf", fmt.Sprintf("bindwatch-test-resize-%d", os.Getpid()))
	t.Cleanup(func() { RemovePins(dir) })
	opts := Options{PinDir: dir, RingBufferBytes: 1 << 16, Filter: Filter{PID: uint32(os.Getpid())}}
	first, err := Load(opts)
	if err != nil {
		t.Fatal(err)
	}
	first.Close()
	var before unix.Stat_t
	if err := unix.Stat(dir, &before); err != nil {
		t.Fatal(err)
	}

	opts.RingBufferBytes = 1 << 17
	second, err := Load(opts)
	if err != nil {
		t.Fatalf("start with a new ring size over the old pins: %v", err)
	}
	defer second.Close()
	var after unix.Stat_t
	if err := unix.Stat(dir, &after); err != nil {
		t.Fatalf("pin directory after the restart: %v", err)
	}
	if after.Ino != before.Ino {
		t.Errorf("the pin directory was removed and made again (inode %d, then %d)", before.Ino, after.Ino)
	}
	if _, err := os.Stat(filepath.Join(dir, "map_events")); err != nil {
		t.Errorf("the new ring is not pinned: %v", err)
	}
	rd, err := second.NewReader()
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	bindN(t, 2)
	if got := readSeqs(t, rd, 2); len(got) != 2 {
		t.Fatalf("read %v after the restart", got)
	}
}
