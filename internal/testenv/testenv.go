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
	"testing"
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
		Unavailable(t, "needs root to load BPF programs and create cgroups (euid %d)", os.Geteuid())
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
