package runtimes

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bindwatch/bindwatch/test/testenv"
)

// Docker is a dockerd of the test's own: its data root, exec root and
// socket in a directory of the test, no bridge and no iptables (containers
// use the host's network or none).
type Docker struct {
	// Root is the --data-root: containers/<id>/config.v2.json is here.
	Root string
	Exec string
	Sock string
	cli  string
}

// StartDocker starts dockerd and waits until it answers. A dockerd that
// cannot start stops the test with its log.
func StartDocker(t testing.TB) *Docker {
	t.Helper()
	testenv.RequireRoot(t)
	dockerd := testenv.RequireTool(t, "dockerd", "docker.io")
	cli := testenv.RequireTool(t, "docker", "docker.io")
	dir := shortDir(t, "bwdocker")
	d := &Docker{Root: filepath.Join(dir, "root"), Exec: filepath.Join(dir, "exec"), Sock: filepath.Join(dir, "docker.sock"), cli: cli}
	cmd := exec.Command(dockerd, "--data-root", d.Root, "--exec-root", d.Exec,
		"--pidfile", filepath.Join(dir, "docker.pid"), "-H", "unix://"+d.Sock,
		"--bridge=none", "--iptables=false", "--ip6tables=false", "--ip-masq=false",
		"--storage-driver=overlay2")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p := testenv.Start(t, cmd, 30*time.Second)
	t.Cleanup(func() {
		// Containers first, so that no shim outlives the daemon.
		if ids, err := d.command("ps", "-aq").Output(); err == nil && len(bytes.TrimSpace(ids)) > 0 {
			_ = d.command(append([]string{"rm", "-f"}, strings.Fields(string(ids))...)...).Run()
		}
		stop(t, p)
		unmountUnder(dir)
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		if err := d.command("info").Run(); err == nil {
			return d
		}
		if time.Now().After(deadline) {
			testenv.Unavailable(t, "dockerd did not answer within 60s:\n%s", tail(p.Output(), 30))
		}
		select {
		case <-p.Exited():
			testenv.Unavailable(t, "dockerd exited: %s", tail(p.Output(), 30))
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (d *Docker) command(args ...string) *exec.Cmd {
	return exec.Command(d.cli, append([]string{"-H", "unix://" + d.Sock}, args...)...)
}

// Docker runs the docker client against this daemon and returns its
// trimmed output, failing the test on an error.
func (d *Docker) Docker(t testing.TB, stdin []byte, args ...string) string {
	t.Helper()
	cmd := d.command(args...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// Import makes image ref of a root file system tar (RootFS) and returns its
// id (sha256:…).
func (d *Docker) Import(t testing.TB, rootfs []byte, ref string) string {
	t.Helper()
	return d.Docker(t, rootfs, "import", "--change", `ENTRYPOINT ["/listener"]`, "-", ref)
}

// shortDir is a directory for a daemon's state, short enough for the unix
// socket paths under it (108 bytes), removed at the end of the test after
// whatever the daemon left mounted there.
func shortDir(t testing.TB, prefix string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", prefix+"-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		unmountUnder(dir)
		if err := os.RemoveAll(dir); err != nil {
			t.Logf("removing %s: %v", dir, err)
		}
	})
	return dir
}

// unmountUnder detaches every mount below dir, deepest first.
func unmountUnder(dir string) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return
	}
	var mounts []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			mounts = append(mounts, f[4])
		}
	}
	for i := len(mounts) - 1; i >= 0; i-- {
		_ = syscall.Unmount(mounts[i], syscall.MNT_DETACH)
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// stop ends a daemon with SIGTERM, unless it already exited.
func stop(t testing.TB, p *testenv.Process) {
	select {
	case <-p.Exited():
	default:
		_ = p.Stop(t, syscall.SIGTERM)
	}
}
