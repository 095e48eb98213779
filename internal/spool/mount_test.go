package spool

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/bindwatch/bindwatch/test/testenv"
)

// inMountNamespace makes cmd start in a mount namespace of its own. Go's
// exec makes / private in it first, so mounts made there stay there and
// vanish with the process.
func inMountNamespace(cmd *exec.Cmd) *exec.Cmd {
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	return cmd
}

const enospcMsgs, enospcSize = 10, 200

// enospcChild fills a 256 KiB tmpfs with a spool whose MaxBytes is four
// times that, and checks that a full disk is a counted, recoverable error.
func enospcChild() error {
	mnt := os.Getenv("DIR")
	if err := unix.Mount("tmpfs", mnt, "tmpfs", 0, "size=256k,mode=0700"); err != nil {
		return fmt.Errorf("mount tmpfs on %s: %w", mnt, err)
	}
	defer unix.Unmount(mnt, 0)
	dir := filepath.Join(mnt, "spool")
	opts := Options{MaxBytes: 1 << 20, Fsync: FsyncPolicy(os.Getenv("FSYNC")), SegmentBytes: 32 << 10,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	s, err := Open(dir, opts)
	if err != nil {
		return err
	}
	appended := 0
	for ; ; appended++ {
		err = s.Append(batchOf(appended, enospcMsgs, enospcSize))
		if err != nil {
			break
		}
	}
	fmt.Printf("appended %d batches before: %v\n", appended, err)
	if !errors.Is(err, unix.ENOSPC) {
		return fmt.Errorf("append on a full disk: %v, want ENOSPC", err)
	}
	if !strings.Contains(err.Error(), dir) {
		return fmt.Errorf("error %q does not name the spool", err)
	}
	if appended < 50 {
		return fmt.Errorf("only %d batches fit in 256 KiB", appended)
	}
	if err := s.Append(batchOf(appended, enospcMsgs, enospcSize)); !errors.Is(err, unix.ENOSPC) {
		return fmt.Errorf("second append on a full disk: %v, want ENOSPC", err)
	}
	st := s.Stats()
	if st.DroppedMessages[WriteError] != 2*enospcMsgs || st.DroppedBatches[WriteError] != 2 || st.Dropped() != 2*enospcMsgs {
		return fmt.Errorf("dropped %v in %v batches, want %d write_error messages in 2", st.DroppedMessages, st.DroppedBatches, 2*enospcMsgs)
	}
	// The failed appends left nothing on disk: the segments hold exactly
	// the records appended.
	var disk int64
	segs, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	for _, p := range segs {
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		disk += fi.Size()
	}
	if n, b := s.Len(); n != appended || b != disk {
		return fmt.Errorf("Len = %d batches %d bytes, segments hold %d bytes; want %d batches", n, b, disk, appended)
	}
	// Replaying frees whole segments; then appends work again.
	const acked = 30
	for i := range acked {
		b, err := s.Peek()
		if err != nil {
			return err
		}
		if id, _ := parseBatchID(b); id != i {
			return fmt.Errorf("peeked batch %d, want %d", id, i)
		}
		if err := s.Ack(b); err != nil {
			return err
		}
	}
	const more = 5
	for i := range more {
		if err := s.Append(batchOf(appended+i, enospcMsgs, enospcSize)); err != nil {
			return fmt.Errorf("append after space returned: %w", err)
		}
	}
	if err := s.Close(); err != nil {
		return err
	}
	s, err = Open(dir, opts)
	if err != nil {
		return err
	}
	defer s.Close()
	var got []int
	for {
		b, err := s.Peek()
		if errors.Is(err, ErrEmpty) {
			break
		}
		if err != nil {
			return err
		}
		id, err := parseBatchID(b)
		if err != nil {
			return err
		}
		got = append(got, id)
		if err := s.Ack(b); err != nil {
			return err
		}
	}
	if want := seq(acked, appended+more-1); !slices.Equal(got, want) {
		return fmt.Errorf("after reopening replayed %v, want %v", got, want)
	}
	if st := s.Stats(); st.Dropped() != 0 || st.CorruptRegions != 0 {
		return fmt.Errorf("the full disk left damage: %+v", st)
	}
	fmt.Printf("replayed %d batches after reopening, no damage\n", len(got))
	return nil
}

// TestFullDisk: on a full filesystem Append fails with ENOSPC, counted as
// write_error, leaves no partial record, and works again once replay has
// freed space; nothing appended is lost across a reopen.
func TestFullDisk(t *testing.T) {
	testenv.RequireRoot(t)
	for _, policy := range policies {
		t.Run(string(policy), func(t *testing.T) {
			cmd := childCommand(t, "", "enospc", "DIR="+t.TempDir(), "FSYNC="+string(policy))
			runChild(t, inMountNamespace(cmd))
		})
	}
}

// readonlyChild mounts a tmpfs, makes a spool in it, remounts it read-only
// and checks that Open refuses both the existing spool and a new one.
func readonlyChild() error {
	mnt := os.Getenv("DIR")
	if err := unix.Mount("tmpfs", mnt, "tmpfs", 0, "size=64k"); err != nil {
		return fmt.Errorf("mount tmpfs on %s: %w", mnt, err)
	}
	defer unix.Unmount(mnt, 0)
	existing := filepath.Join(mnt, "existing")
	s, err := Open(existing, Options{MaxBytes: 1 << 20})
	if err != nil {
		return err
	}
	s.Close()
	if err := unix.Mount("", mnt, "", unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
		return fmt.Errorf("remount read-only: %w", err)
	}
	for _, dir := range []string{existing, filepath.Join(mnt, "new"), filepath.Join(mnt, "new", "deeper")} {
		_, err := Open(dir, Options{MaxBytes: 1 << 20})
		fmt.Printf("Open(%s): %v\n", dir, err)
		if !errors.Is(err, unix.EROFS) || !strings.Contains(err.Error(), dir) {
			return fmt.Errorf("Open(%s) on a read-only mount: %v, want EROFS naming the path", dir, err)
		}
	}
	return nil
}

// deniedChild runs without root and checks that Open refuses a directory
// it may not write, existing or to be created in it.
func deniedChild() error {
	if os.Geteuid() == 0 {
		return errors.New("runs as root: permissions would not apply")
	}
	return checkDenied(os.Getenv("DIR"))
}

func checkDenied(ro string) error {
	for _, dir := range []string{ro, filepath.Join(ro, "sub")} {
		_, err := Open(dir, Options{MaxBytes: 1 << 20})
		fmt.Printf("Open(%s): %v\n", dir, err)
		if !errors.Is(err, unix.EACCES) || !strings.Contains(err.Error(), dir) {
			return fmt.Errorf("Open(%s) without write permission: %v, want EACCES naming the path", dir, err)
		}
	}
	return nil
}

func TestOpenRefusesUnwritable(t *testing.T) {
	t.Run("path under a regular file", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "file")
		writeFile(t, file, []byte("not a directory"))
		for _, dir := range []string{file, filepath.Join(file, "spool")} {
			_, err := Open(dir, Options{MaxBytes: 1 << 20})
			if !errors.Is(err, syscall.ENOTDIR) || !strings.Contains(err.Error(), dir) {
				t.Errorf("Open(%s): %v, want ENOTDIR naming the path", dir, err)
			}
		}
	})
	t.Run("read-only mount", func(t *testing.T) {
		testenv.RequireRoot(t)
		runChild(t, inMountNamespace(childCommand(t, "", "readonly", "DIR="+t.TempDir())))
	})
	t.Run("directory without write permission", func(t *testing.T) {
		// Root ignores permissions, so as root the check runs in a child
		// with the nobody uid, from a copy of the test binary it may run.
		base := t.TempDir()
		ro := filepath.Join(base, "ro")
		if err := os.Mkdir(ro, 0o555); err != nil {
			t.Fatal(err)
		}
		if os.Geteuid() != 0 {
			if err := checkDenied(ro); err != nil {
				t.Fatal(err)
			}
			return
		}
		runChildAsNobody(t, base, "denied", "DIR="+ro)
	})
}
