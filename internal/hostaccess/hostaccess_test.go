package hostaccess

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/bindwatch/bindwatch/test/testenv"
)

func TestGrant(t *testing.T) {
	testenv.RequireRoot(t) // giving a file to a group one is not in
	root := t.TempDir()
	mk := func(p string, mode os.FileMode, dir bool) {
		t.Helper()
		full := filepath.Join(root, p)
		if dir {
			if err := os.MkdirAll(full, 0o700); err != nil {
				t.Fatal(err)
			}
		} else if err := os.WriteFile(full, []byte("742\n"), 0o400); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(full, mode); err != nil {
			t.Fatal(err)
		}
	}
	// As Debian's 6.1 lays it out: dirs 0750, ids 0440; the root 0700.
	mk("events/syscalls/sys_exit_bind", 0o750, true)
	mk("events/syscalls/sys_exit_bind/id", 0o440, false)
	mk("events/syscalls/sys_enter_bind", 0o750, true)
	mk("events/syscalls/sys_enter_bind/id", 0o440, false)
	mk("events/syscalls", 0o750, true)
	mk("events", 0o755, true) // others may already search it: left alone
	mk("trace_pipe", 0o440, false)
	if err := os.Chmod(root, 0o700); err != nil {
		t.Fatal(err)
	}
	const gid = 4321
	changes, err := GrantTracefs(root, gid, append(Events, "nosuch/event"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]os.FileMode{
		".": 0o710, "events": 0o755, "events/syscalls": 0o750, "events/syscalls/sys_exit_bind": 0o750,
		"events/syscalls/sys_exit_bind/id": 0o440, "events/syscalls/sys_enter_bind/id": 0o440, "trace_pipe": 0o440,
	}
	wantGid := map[string]uint32{".": gid, "events/syscalls": gid, "events/syscalls/sys_exit_bind": gid,
		"events/syscalls/sys_exit_bind/id": gid}
	for p, mode := range want {
		var st syscall.Stat_t
		if err := syscall.Stat(filepath.Join(root, p), &st); err != nil {
			t.Fatal(err)
		}
		if got := os.FileMode(st.Mode & 0o7777); got != mode || st.Gid != wantGid[p] {
			t.Errorf("%s: mode %04o gid %d, want %04o gid %d", p, got, st.Gid, mode, wantGid[p])
		}
	}
	if len(changes) != 4 {
		t.Errorf("%d changes, want 4: %+v", len(changes), changes)
	}
	// Again: nothing left to do.
	if again, err := GrantTracefs(root, gid, Events); err != nil || len(again) != 0 {
		t.Errorf("second grant: %v, %+v", err, again)
	}
}

// bpffs's root as systemd mounts it (0700, sometimes sticky): the group
// may search it after, and the sticky bit stays.
func TestGrantSearch(t *testing.T) {
	testenv.RequireRoot(t)
	dir := t.TempDir()
	if err := unix.Chmod(dir, 0o1700); err != nil {
		t.Fatal(err)
	}
	changes, err := GrantSearch(dir, 4321)
	if err != nil || len(changes) != 1 {
		t.Fatalf("%+v, %v", changes, err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		t.Fatal(err)
	}
	if st.Mode&0o7777 != 0o1710 || st.Gid != 4321 {
		t.Errorf("mode %04o gid %d, want 1710 gid 4321", st.Mode&0o7777, st.Gid)
	}
	if again, err := GrantSearch(dir, 4321); err != nil || len(again) != 0 {
		t.Errorf("second grant: %+v, %v", again, err)
	}
}
