package spool

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/bindwatch/bindwatch/test/testenv"
)

// Some tests need a process of their own: one to kill with SIGKILL, one in
// a private mount namespace, one with another uid. They re-execute the test
// binary with childEnv naming what to do; TestMain runs that instead of the
// tests.
const childEnv = "BINDWATCH_SPOOL_TEST_CHILD"

var children = map[string]func() error{
	"crash":      crashChild,
	"enospc":     enospcChild,
	"readonly":   readonlyChild,
	"denied":     deniedChild,
	"unreadable": unreadableChild,
}

func TestMain(m *testing.M) {
	if name := os.Getenv(childEnv); name != "" {
		run, ok := children[name]
		if !ok {
			fmt.Fprintf(os.Stderr, "unknown child %q\n", name)
			os.Exit(2)
		}
		if err := run(); err != nil {
			fmt.Fprintf(os.Stderr, "child %s: %v\n", name, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// childCommand prepares the test binary (or exe) to run child name with
// env added.
func childCommand(t testing.TB, exe, name string, env ...string) *exec.Cmd {
	t.Helper()
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), append([]string{childEnv + "=" + name}, env...)...)
	return cmd
}

// runChildAsNobody runs child name as the nobody user (uid 65534), for the
// checks of permissions, which root ignores, from a copy of the test binary
// in base, a directory t.TempDir made. base and the directory above it,
// both made by testing for this test, are opened to others; anything above
// them must already be.
func runChildAsNobody(t *testing.T, base, name string, env ...string) {
	t.Helper()
	copyPath := filepath.Join(base, "spool.test")
	testenv.CopyTestBinary(t, copyPath)
	for i, d := 0, base; d != "/"; i, d = i+1, filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&0o001 != 0 {
			continue
		}
		if i >= 2 {
			testenv.Unavailable(t, "%s is not searchable by others, so an unprivileged child cannot reach the test directory", d)
		}
		if err := os.Chmod(d, fi.Mode().Perm()|0o005); err != nil {
			t.Fatal(err)
		}
	}
	cmd := childCommand(t, copyPath, name, env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	cmd.Dir = "/"
	runChild(t, cmd)
}

// runChild runs cmd to its end and fails t with its output if it fails.
func runChild(t testing.TB, cmd *exec.Cmd) string {
	t.Helper()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	t.Logf("child output:\n%s", out.String())
	if err != nil {
		t.Fatalf("child %s: %v", cmd.Path, err)
	}
	return out.String()
}
