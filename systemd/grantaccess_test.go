package systemd_test

import (
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/bindwatch/bindwatch/internal/hostaccess"
	"github.com/bindwatch/bindwatch/test/testenv"
)

// grantAccessVar makes the test binary, re-executed, do what the unit's
// ExecStartPre= (bindwatch grant-access) does for the named group: the
// container of TestUnitUnderSystemd has no bindwatch binary.
const grantAccessVar = "BINDWATCH_TEST_CHILD_GRANT_GROUP"

// grantAccessLine is the unit's ExecStartPre= that replaces
// CAP_DAC_READ_SEARCH.
const grantAccessLine = "-+/usr/bin/bindwatch grant-access --group bindwatch"

func runGrantAccess(group string) error {
	gid, err := strconv.Atoi(group)
	if err != nil {
		g, err := user.LookupGroup(group)
		if err != nil {
			return err
		}
		gid, _ = strconv.Atoi(g.Gid)
	}
	if _, err := hostaccess.GrantSearch("/sys/fs/bpf", gid); err != nil {
		return err
	}
	root, err := hostaccess.FindRoot()
	if err != nil {
		return err
	}
	_, err = hostaccess.GrantTracefs(root, gid, hostaccess.Events)
	return err
}

// keepTracefsPerms puts back, when t ends, the owner and mode of every
// tracefs file the grant may change: the host's tracefs is shared with
// everything else on the machine. Until then, no other test may change them
// (testenv.LockTracefs).
func keepTracefsPerms(t *testing.T) {
	t.Helper()
	testenv.LockTracefs(t)
	root, err := hostaccess.FindRoot()
	if err != nil {
		return
	}
	type saved struct {
		path     string
		mode     uint32
		uid, gid int
	}
	var all []saved
	for _, p := range hostaccess.Paths(root, hostaccess.Events) {
		var st syscall.Stat_t
		if err := syscall.Lstat(p, &st); err == nil {
			all = append(all, saved{p, st.Mode & 0o7777, int(st.Uid), int(st.Gid)})
		}
	}
	t.Cleanup(func() {
		for _, s := range all {
			if err := os.Lchown(s.path, s.uid, s.gid); err != nil {
				t.Errorf("restoring %s: %v", s.path, err)
			}
			if err := unix.Chmod(s.path, s.mode); err != nil {
				t.Errorf("restoring %s: %v", s.path, err)
			}
		}
	})
}

// grantAsUnit checks that the unit runs bindwatch grant-access as root
// before the agent, and does what it does for gid, on the host's tracefs
// and on bpffs, the bpffs mount of the test.
func grantAsUnit(t *testing.T, text string, gid int, bpffs string) {
	t.Helper()
	pre := directive(text, "ExecStartPre")
	if len(pre) != 1 || pre[0] != grantAccessLine {
		t.Fatalf("ExecStartPre= %q, want exactly %q", pre, grantAccessLine)
	}
	if _, err := hostaccess.GrantSearch(bpffs, gid); err != nil {
		t.Fatal(err)
	}
	root, err := hostaccess.FindRoot()
	if err != nil {
		t.Logf("no tracefs to grant: %v", err)
		return
	}
	keepTracefsPerms(t)
	changes, err := hostaccess.GrantTracefs(root, gid, hostaccess.Events)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range changes {
		t.Logf("grant-access: %s mode %04o gid %d", strings.TrimPrefix(c.Path, root+"/"), c.Mode, c.Gid)
	}
}

// readFileVar makes the test binary, re-executed, read the named file and
// exit 0 if it could.
const readFileVar = "BINDWATCH_TEST_CHILD_READ"

// TestUnitCannotReadSecrets is the confused deputy: whatever the agent is
// led to open (a configuration path, a name in /proc), it opens it without
// CAP_DAC_READ_SEARCH, which the unit grants but the agent holds effective
// only in dacread's open beneath the runtimes' state roots. With the unit's
// capabilities, after the agent's dacread.Confine, /etc/shadow must not be
// read. (Code running in the agent could raise the capability itself:
// against that stand the unit's InaccessiblePaths=, checked under systemd
// by TestWorkloadUnderShippedUnit.)
func TestUnitCannotReadSecrets(t *testing.T) {
	testenv.RequireRoot(t)
	text := readUnit(t)
	caps := strings.Fields(directive(text, "AmbientCapabilities")[0])
	dir := testenv.WorldReadableDir(t)
	exe := filepath.Join(dir, "reader")
	copyStandin(t, exe)
	// A root-only file like /etc/shadow, wherever the host has none (the VM).
	secret := filepath.Join(dir, "shadow")
	if err := os.WriteFile(secret, []byte("root:$6$secret:19000::::::\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/etc/shadow", secret} {
		if _, err := os.Stat(path); err != nil {
			continue
		}
		var ambient []uintptr
		for _, c := range caps {
			ambient = append(ambient, uintptr(capNumbers[c]))
		}
		cmd := exec.Command(exe, "-test.run=^$")
		cmd.Env = append(os.Environ(), readFileVar+"="+path)
		cmd.SysProcAttr = &syscall.SysProcAttr{
			Credential:  &syscall.Credential{Uid: standinUID, Gid: standinUID, Groups: []uint32{}},
			AmbientCaps: ambient,
		}
		out, err := cmd.CombinedOutput()
		if err == nil {
			t.Errorf("with the unit's capabilities %v, uid %d read %s", caps, standinUID, path)
			continue
		}
		if !strings.Contains(string(out), "permission denied") {
			t.Errorf("reading %s: %v %s; want permission denied", path, err, out)
		}
	}
}
