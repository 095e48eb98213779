package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/bindwatch/bindwatch/test/testenv"
)

// bindwatch grant-access, as the unit's ExecStartPre= runs it, on a fixture
// tracefs and bpffs laid out as the kernel lays them out (0700 roots).
func TestGrantAccessCommand(t *testing.T) {
	testenv.RequireRoot(t)
	dir := t.TempDir()
	tracefs, bpffs := filepath.Join(dir, "tracing"), filepath.Join(dir, "bpf")
	id := filepath.Join(tracefs, "events/syscalls/sys_exit_bind/id")
	if err := os.MkdirAll(filepath.Dir(id), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(id, []byte("742\n"), 0o440); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{tracefs, bpffs} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	out, err := exec.Command(binary, "grant-access", "--group", "4321", "--tracefs", tracefs, "--bpffs", bpffs).CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	want := tracefs + ": mode 0710 gid 4321 (was mode 0700 gid 0)\n" +
		id + ": mode 0440 gid 4321 (was mode 0440 gid 0)\n" +
		bpffs + ": mode 0710 gid 4321 (was mode 0700 gid 0)\n"
	if string(out) != want {
		t.Errorf("output:\n%s\nwant:\n%s", out, want)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Dir(filepath.Dir(id)), &st); err != nil || st.Gid != 0 {
		t.Errorf("events/syscalls, which others may search, was changed: gid %d %v", st.Gid, err)
	}
	if out, err := exec.Command(binary, "grant-access", "--group", "no-such-group-here").CombinedOutput(); err == nil || !strings.Contains(string(out), "no-such-group-here") {
		t.Errorf("unknown group: %v %s", err, out)
	}
}
