package testenv

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// LockTracefs holds, until t ends, a lock on the host's tracefs modes. A test
// whose agent runs as a user other than root (systemd's and deploy's, in
// containers) has bindwatch grant-access give that user's group the tracefs
// files it needs, then puts their owner and mode back. There is one tracefs
// on a host, every mount of it the same, and go test runs packages side by
// side: without the lock one test's restore takes the access away from
// another's agent while it starts (seen: deploy's agent failed to start while
// systemd's tests ran). Call it before anything may change tracefs, so that
// the lock is released after the restore.
func LockTracefs(t testing.TB) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "bindwatch-test-tracefs.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() }) // closing the last descriptor unlocks
}
