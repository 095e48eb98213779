package deploy_test

// What the package tests use to boot a root, look at its pins, owners and
// metrics, and run commands in it.

import (
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bindwatch/bindwatch/test/testenv"
)

// pinSet is the pinned maps under a pin directory: file name and inode.
type pinSet map[string]uint64

func (p pinSet) Equal(q pinSet) bool { return maps.Equal(p, q) }

func pinnedMaps(t *testing.T, dir string) pinSet {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	set := pinSet{}
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "map_") {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		set[e.Name()] = fi.Sys().(*syscall.Stat_t).Ino
	}
	if len(set) == 0 {
		t.Fatalf("no pinned maps in %s", dir)
	}
	return set
}

// buildRoot lays out an OS tree with a fresh /etc; /usr and /var/lib/dpkg
// are mounted over it afterwards.
func buildRoot(t *testing.T, root string) {
	t.Helper()
	for _, d := range []string{"usr", "etc/systemd/system", "var/lib/dpkg", "var/lib/rpm", "var/log", "var/tmp", "tmp", "root", "proc", "sys", "dev", "run"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for link, target := range map[string]string{"bin": "usr/bin", "sbin": "usr/sbin", "lib": "usr/lib", "lib64": "usr/lib64",
		"etc/os-release": "../usr/lib/os-release"} {
		if err := os.Symlink(target, filepath.Join(root, link)); err != nil {
			t.Fatal(err)
		}
	}
	for name, content := range testenv.ContainerEtc("bindwatch-pkg-test") {
		mode := os.FileMode(0o644)
		if strings.Contains(name, "shadow") {
			mode = 0o600
		}
		if err := os.WriteFile(filepath.Join(root, name), []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
}

// overlay mounts lower at target with writes going to work/upper.
func overlay(t *testing.T, lower, target, work string) {
	t.Helper()
	upper, wd := filepath.Join(work, "upper"), filepath.Join(work, "work")
	for _, d := range []string{upper, wd} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Mount(t, "overlay", target, "overlay", 0, "lowerdir="+lower+",upperdir="+upper+",workdir="+wd)
}

func checkOwner(t *testing.T, path, uid string, mode os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Error(err)
		return
	}
	st := fi.Sys().(*syscall.Stat_t)
	if strconv.Itoa(int(st.Uid)) != uid || fi.Mode().Perm() != mode {
		t.Errorf("%s: uid %d mode %v, want uid %s (bindwatch) mode %v", path, st.Uid, fi.Mode().Perm(), uid, mode)
	}
}

// freeAddr is a loopback address no one listened on a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

var metricLine = regexp.MustCompile(`(?m)^(\w+) ([0-9.e+]+)$`)

// counter reads one unlabelled series from the agent's /metrics.
func counter(t *testing.T, addr, name string) float64 {
	t.Helper()
	v, err := scrape(addr, name)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func scrape(addr, name string) (float64, error) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	for _, m := range metricLine.FindAllStringSubmatch(string(b), -1) {
		if m[1] == name {
			return strconv.ParseFloat(m[2], 64)
		}
	}
	return 0, fmt.Errorf("/metrics has no %s", name)
}

// waitPublished binds a socket now and then until the agent has
// published at least n events and reports itself healthy; it returns the
// count.
func waitPublished(t *testing.T, addr string, n float64) float64 {
	t.Helper()
	var published float64
	testenv.Eventually(t, fmt.Sprintf("%v events published and healthy", n), 20*time.Second, func() error {
		if l, err := net.Listen("tcp", "127.0.0.1:0"); err == nil {
			l.Close()
		}
		v, err := scrape(addr, "bindwatch_events_published_total")
		if err != nil {
			return err
		}
		if v < n {
			return fmt.Errorf("%v events published", v)
		}
		resp, err := http.Get("http://" + addr + "/healthz")
		if err != nil {
			return err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("/healthz %d: %s", resp.StatusCode, body)
		}
		published = v
		return nil
	})
	return published
}

// container runs commands in the booted container.
type container struct{ *testenv.Container }

// boot starts the container and returns once its systemd runs: until then
// systemctl may not answer, and dpkg's maintainer scripts call it.
func boot(t *testing.T, root, bpffs string) *container {
	t.Helper()
	c := &container{testenv.BootContainer(t, root, bpffs, "bindwatch-pkg-"+strconv.Itoa(os.Getpid()))}
	testenv.Eventually(t, "the container's systemd running", 30*time.Second, func() error {
		if s := c.try("systemctl", "is-system-running"); s != "running" && s != "degraded" {
			return fmt.Errorf("systemctl is-system-running: %q", s)
		}
		return nil
	})
	return c
}

// command runs args in the container with a clean environment, as a root
// shell there would have it.
func (c *container) command(args ...string) *exec.Cmd {
	env := []string{"env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8", "DEBIAN_FRONTEND=noninteractive"}
	return c.Command(append(env, args...)...)
}

// run runs a command in the container and fails t if it fails.
func (c *container) run(t *testing.T, args ...string) string {
	t.Helper()
	out, err := c.command(args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	t.Logf("%s:\n%s", strings.Join(args, " "), out)
	return string(out)
}

// try runs a command in the container and returns its trimmed standard
// output whatever its exit status (systemctl is-active exits 3 when
// inactive).
func (c *container) try(args ...string) string {
	out, _ := c.command(args...).Output()
	return strings.TrimSpace(string(out))
}
