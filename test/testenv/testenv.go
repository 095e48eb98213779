// Package testenv decides whether a test that needs something from the host
// (root, a tool, a kernel feature) can run, and says why when it cannot.
//
// Locally such a test skips with the reason. Under CI, where
// BINDWATCH_REQUIRE_ALL=1, a missing capability fails the test instead: every
// tier must really run there.
package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// RequireAllVar names the environment variable that turns skips into failures.
const RequireAllVar = "BINDWATCH_REQUIRE_ALL"

// Unavailable skips t, or fails it under BINDWATCH_REQUIRE_ALL=1, saying why.
func Unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	reason := fmt.Sprintf(format, args...)
	if os.Getenv(RequireAllVar) == "1" {
		t.Fatalf("cannot run, and %s=1 forbids skipping: %s", RequireAllVar, reason)
	}
	t.Skipf("SKIP (not run): %s", reason)
}

// RequireRoot stops t unless it runs as root.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		Unavailable(t, "needs root (euid %d)", os.Geteuid())
	}
}

// RequireTool stops t unless the named program is installed, and returns its path.
func RequireTool(t testing.TB, name, pkg string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		Unavailable(t, "needs %s (Debian package %s) on PATH", name, pkg)
	}
	return path
}

// Cgroup2Mount is where the unified cgroup hierarchy is mounted:
// /sys/fs/cgroup on pure cgroup v2 hosts, /sys/fs/cgroup/unified on hybrid
// ones. It stops t when there is none.
func Cgroup2Mount(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		pre, post, ok := strings.Cut(line, " - ")
		if !ok || !strings.HasPrefix(post, "cgroup2 ") {
			continue
		}
		if f := strings.Fields(pre); len(f) >= 5 {
			return f[4]
		}
	}
	Unavailable(t, "no cgroup2 hierarchy is mounted")
	return ""
}

// WorldReadableDir is a temporary directory others may enter, removed at the
// end of the test: go test builds and runs inside directories only their
// owner may enter, where a child running as another user cannot reach.
func WorldReadableDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "bindwatch-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// CopyTestBinary copies the running test binary to path, executable by all,
// so it can be re-run as another user or in another root.
func CopyTestBinary(t testing.TB, path string) {
	t.Helper()
	CopyFile(t, os.Args[0], path, 0o755)
}

// CopyFile copies the file from to a new file to with mode perm; it fails t
// on any error.
func CopyFile(t testing.TB, from, to string, perm os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, perm); err != nil {
		t.Fatal(err)
	}
}

// HostileComm is a thread name (comm, 15 bytes at most) an attacker can set
// with prctl(PR_SET_NAME): invalid UTF-8, a terminal escape that clears the
// screen, and a newline.
const HostileComm = "\xff\xfe\x1b[2J\n"

// BindAsThread binds a UDP socket to 127.0.0.1 port 0 from a thread of this
// process named comm, and returns the port the kernel chose. The thread is
// used for nothing else and ends with the call, so its name leaks nowhere.
func BindAsThread(t testing.TB, comm string) int {
	t.Helper()
	type result struct {
		port int
		err  error
	}
	done := make(chan result, 1)
	go func() {
		// Never unlocked: the thread exits with the goroutine.
		runtime.LockOSThread()
		port, err := bindNamed(comm)
		done <- result{port, err}
	}()
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	return r.port
}

func bindNamed(comm string) (int, error) {
	name, err := unix.BytePtrFromString(comm)
	if err != nil {
		return 0, err
	}
	if err := unix.Prctl(unix.PR_SET_NAME, uintptr(unsafe.Pointer(name)), 0, 0, 0); err != nil {
		return 0, fmt.Errorf("prctl(PR_SET_NAME): %w", err)
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		return 0, fmt.Errorf("bind: %w", err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return 0, err
	}
	return sa.(*unix.SockaddrInet4).Port, nil
}

// ReadFile returns the contents of the file at path, failing t if it cannot
// be read.
func ReadFile(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Deps lists the import paths pkg (a pattern go list takes, such as ".")
// depends on, itself included, as `go list -deps` does.
func Deps(t testing.TB, pkg string) []string {
	t.Helper()
	goCmd := RequireTool(t, "go", "golang-go")
	out, err := exec.Command(goCmd, "list", "-deps", "-f", "{{.ImportPath}}", pkg).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("go list -deps %s: %v\n%s", pkg, err, stderr)
	}
	return strings.Fields(string(out))
}
