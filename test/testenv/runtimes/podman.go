package runtimes

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bindwatch/bindwatch/test/testenv"
)

// Podman is Debian's podman with a container storage of the test's own,
// runc (crun refuses this host) and the cgroupfs manager (no systemd).
type Podman struct {
	// Root and RunRoot are containers/storage's graph root and run root.
	Root, RunRoot string
	bin           string
	global        []string
}

// RunLimits are the resource limits Podman containers get here. Podman
// raises RLIMIT_NOFILE to 1048576 and RLIMIT_NPROC by default, which
// needs CAP_SYS_RESOURCE; runc then fails with "error setting rlimits for
// ready process: error setting rlimit type 7: operation not permitted".
var RunLimits = []string{"--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096"}

// NewPodman prepares a Podman of the test's own (it has no daemon) and
// checks that it answers.
func NewPodman(t testing.TB) *Podman {
	t.Helper()
	testenv.RequireRoot(t)
	bin := testenv.RequireTool(t, "podman", "podman")
	runc := testenv.RequireTool(t, "runc", "runc")
	dir := shortDir(t, "bwpodman")
	p := &Podman{Root: filepath.Join(dir, "root"), RunRoot: filepath.Join(dir, "run"), bin: bin}
	p.global = []string{"--root", p.Root, "--runroot", p.RunRoot, "--runtime", runc,
		"--cgroup-manager", "cgroupfs", "--events-backend", "file", "--storage-driver", "overlay",
		"--tmpdir", filepath.Join(dir, "tmp")}
	t.Cleanup(func() {
		_ = exec.Command(p.bin, append(p.global, "rm", "-af", "-t", "0")...).Run()
		unmountUnder(dir)
	})
	if out, err := exec.Command(p.bin, append(p.global, "info")...).CombinedOutput(); err != nil {
		testenv.Unavailable(t, "podman info: %v\n%s", err, tail(string(out), 20))
	}
	return p
}

// Podman runs podman and returns its trimmed output, failing the test on
// an error.
func (p *Podman) Podman(t testing.TB, stdin []byte, args ...string) string {
	t.Helper()
	cmd := exec.Command(p.bin, append(p.global, args...)...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("podman %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// Import makes image ref of a root file system tar (RootFS) and returns its
// id (sha256:…).
func (p *Podman) Import(t testing.TB, rootfs []byte, ref string) string {
	t.Helper()
	out := p.Podman(t, rootfs, "import", "--quiet", "--change", `ENTRYPOINT ["/listener"]`, "-", ref)
	lines := strings.Split(out, "\n")
	id := lines[len(lines)-1]
	if !strings.HasPrefix(id, "sha256:") {
		id = "sha256:" + id
	}
	return id
}
