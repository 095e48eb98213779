package bpf

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// The pin directory's lock decides the race between an agent that starts
// and `bindwatch unpin --if-orphaned`: every agent holds a shared flock(2)
// on the directory from before it opens the pinned maps until it exits, and
// the orphan unpin takes it exclusively, without waiting, from before it
// reads the lease until the pins are gone. So an unpin never removes what a
// live agent uses or has just taken over (it finds the lock held and
// refuses), and an agent that starts while an unpin runs waits for it and
// then starts afresh on an empty directory. The lease covers the moments no
// agent runs at all: a restart, an upgrade, a crash shorter than
// capture.orphan_timeout. The kernel drops the lock with the agent's last
// descriptor, so a killed agent leaves none behind.

// pinLockWait bounds how long an agent waits for an unpin holding the pin
// directory: removing the pins takes milliseconds.
const pinLockWait = 30 * time.Second

// lockPinDir opens dir and takes how (unix.LOCK_SH or unix.LOCK_EX) on it.
// wait 0: fail at once with errPinDirBusy if someone else holds it.
func lockPinDir(dir string, how int, wait time.Duration) (*os.File, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("opening the pin directory to lock it: %w", err)
	}
	deadline := time.Now().Add(wait)
	for {
		err := unix.Flock(int(f.Fd()), how|unix.LOCK_NB)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("locking the pin directory %s: %w", dir, err)
		}
		if !time.Now().Before(deadline) {
			f.Close()
			return nil, errPinDirBusy
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var errPinDirBusy = errors.New("the pin directory is locked")

// OrphanVerdict is what UnpinIfOrphaned found, and did.
type OrphanVerdict struct {
	// Unpinned: the lease had expired and no agent held the directory, so
	// the pins are gone.
	Unpinned bool
	// Reason says why nothing was removed, for the log; empty when Unpinned.
	Reason string
	// Expired is how long the lease had been expired (Unpinned), or
	// Remaining how long it still runs (refused for a live lease).
	Expired, Remaining time.Duration
	// Pins is how many links and maps were there.
	Pins int
}

// afterOrphanCheck, when set by a test, runs once the lease was found
// expired, with the lock held, before the pins are removed.
var afterOrphanCheck func()

// UnpinIfOrphaned removes the links and maps pinned under dir, keeping the
// directory itself (under the unit /sys is read-only but for it), only when
// no agent holds the directory's lock and the pinned lease has expired:
// what the packages' bindwatch-unpin.timer runs, so that a stopped agent's
// inert programs do not stay attached until someone unpins them. It refuses
// (Unpinned false, no error) while an agent runs or starts, while the lease
// runs, when capture has no lease (capture.orphan_timeout 0: capture goes on
// until unpinned by hand), and when pins are there but no lease map (a
// bindwatch too old to have one).
func UnpinIfOrphaned(dir string) (OrphanVerdict, error) {
	var v OrphanVerdict
	lock, err := lockPinDir(dir, unix.LOCK_EX, 0)
	if errors.Is(err, os.ErrNotExist) {
		v.Reason = "no pin directory"
		return v, nil
	}
	if errors.Is(err, errPinDirBusy) {
		v.Reason = "an agent is running or starting (it holds the pin directory's lock)"
		return v, nil
	}
	if err != nil {
		return v, err
	}
	defer lock.Close()

	entries, err := os.ReadDir(dir)
	if err != nil {
		return v, fmt.Errorf("listing %s: %w", dir, err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "link_") || strings.HasPrefix(e.Name(), "map_") {
			v.Pins++
		}
	}
	if v.Pins == 0 {
		v.Reason = "nothing is pinned"
		return v, nil
	}
	m, err := ebpf.LoadPinnedMap(leasePath(dir), &ebpf.LoadPinOptions{ReadOnly: true})
	if errors.Is(err, os.ErrNotExist) {
		v.Reason = "pins without a lease map (left by a bindwatch without capture.orphan_timeout): remove them with bindwatch unpin"
		return v, nil
	}
	if err != nil {
		return v, fmt.Errorf("opening the pinned lease: %w", err)
	}
	defer m.Close()
	var until uint64
	if err := m.Lookup(uint32(0), &until); err != nil {
		return v, fmt.Errorf("reading the capture lease: %w", err)
	}
	if until == 0 {
		v.Reason = "capture has no lease (capture.orphan_timeout 0: it goes on until unpinned)"
		return v, nil
	}
	now, err := bootNS()
	if err != nil {
		return v, err
	}
	if now <= until {
		v.Remaining = time.Duration(until - now)
		v.Reason = fmt.Sprintf("the lease runs for %v more (an agent restarting or upgraded keeps its capture)", v.Remaining.Round(time.Second))
		return v, nil
	}
	v.Expired = time.Duration(now - until)
	if afterOrphanCheck != nil {
		afterOrphanCheck()
	}
	if err := removePinEntries(dir); err != nil {
		return v, err
	}
	v.Unpinned = true
	return v, nil
}

func leasePath(dir string) string { return (&pins{dir: dir}).mapPath("lease") }
