package bpf

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/bindwatch/bindwatch/test/testenv"
)

// otherUID is a uid nobody on the test host uses: the attacker.
const otherUID = 1999

// testPinRoot is a directory of this test's own under bpffs, removed at the
// end with everything pinned in it even when the test fails.
func testPinRoot(t *testing.T, name string) string {
	t.Helper()
	testenv.RequireRoot(t)
	mustBPFFS(t)
	root := filepath.Join("/sys/fs/bpf", fmt.Sprintf("bindwatch-test-%s-%d", name, os.Getpid()))
	if err := os.Mkdir(root, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
			if err == nil && info.IsDir() && p != root {
				RemovePins(p)
			}
			return nil
		})
		os.RemoveAll(root)
	})
	return root
}

// TestLoadRefusesForeignPinDir is the attack: a user makes a directory on
// bpffs, the operator names it in capture.pin_dir, the agent pins its link
// and sequence counter there and the user deletes them. The agent must
// refuse the directory before pinning anything in it.
func TestLoadRefusesForeignPinDir(t *testing.T) {
	root := testPinRoot(t, "pinown")
	// The attacker's directory: theirs, in a sticky world-writable parent
	// as /sys/fs/bpf is on many hosts.
	if err := os.Chmod(root, 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		setup func(dir string) error
		want  []string
	}{
		{"owned by another uid", func(dir string) error {
			if err := os.Mkdir(dir, 0o700); err != nil {
				return err
			}
			return os.Chown(dir, otherUID, otherUID)
		}, []string{"owned by uid 1999", "mode 0700"}},
		{"mode 0777", func(dir string) error {
			if err := os.Mkdir(dir, 0o700); err != nil {
				return err
			}
			return os.Chmod(dir, 0o777)
		}, []string{"mode 0777", "writable by group or others"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(root, strings.ReplaceAll(tc.name, " ", "-"))
			if err := tc.setup(dir); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { RemovePins(dir) })
			p, err := Load(Options{PinDir: dir, Filter: Filter{PID: uint32(os.Getpid())}})
			if err == nil {
				p.Close()
				left, _ := filepath.Glob(dir + "/*")
				t.Fatalf("Load pinned into %s, which uid %d may write to (delete the link and seq counter): %v", dir, otherUID, left)
			}
			for _, w := range append(tc.want, dir) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if left, _ := filepath.Glob(dir + "/*"); len(left) > 0 {
				t.Errorf("refused, yet pinned: %v", left)
			}
		})
	}
}

func TestSecurePinDir(t *testing.T) {
	root := testPinRoot(t, "pindir")
	mkdir := func(p string, mode os.FileMode, uid int) string {
		t.Helper()
		if err := os.Mkdir(p, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(p, uid, uid); err != nil {
			t.Fatal(err)
		}
		return p
	}
	sticky := mkdir(filepath.Join(root, "sticky"), 0o777|os.ModeSticky, 0)
	open := mkdir(filepath.Join(root, "open"), 0o777, 0)
	foreign := mkdir(filepath.Join(root, "foreign"), 0o755, otherUID)
	mkdir(filepath.Join(open, "pins"), 0o700, 0)
	mkdir(filepath.Join(foreign, "pins"), 0o700, 0)
	mkdir(filepath.Join(root, "groupw"), 0o770, 0)
	mkdir(filepath.Join(root, "mine"), 0o700, 0)

	for _, tc := range []struct {
		dir  string
		want string // "" for accepted
	}{
		{filepath.Join(root, "mine"), ""},
		{filepath.Join(sticky, "absent"), ""},
		{filepath.Join(root, "groupw"), "mode 0770"},
		{filepath.Join(open, "pins"), "parent " + open + " (owner uid 0) has mode 0777, writable by group or others without the sticky bit"},
		{filepath.Join(foreign, "pins"), "parent " + foreign + " is owned by uid 1999"},
		{filepath.Join(foreign, "absent"), "parent " + foreign + " is owned by uid 1999"},
	} {
		err := securePinDir(tc.dir)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.dir, err)
		case tc.want != "" && err == nil:
			t.Errorf("%s: accepted; want refused with %q", tc.dir, tc.want)
		case tc.want != "" && !strings.Contains(err.Error(), tc.want):
			t.Errorf("%s: %v; want %q", tc.dir, err, tc.want)
		}
	}
	// Created when absent: the agent's, 0700.
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(sticky, "absent"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Uid != uint32(os.Geteuid()) || st.Mode&0o7777 != 0o700 {
		t.Errorf("created pin directory: uid %d mode %04o; want %d 0700", st.Uid, st.Mode&0o7777, os.Geteuid())
	}
	if _, err := os.Stat(filepath.Join(foreign, "absent")); err == nil {
		t.Error("created a pin directory under a foreign parent")
	}
}
