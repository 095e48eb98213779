package systemd_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/bindwatch/bindwatch/test/testenv"
	"github.com/bindwatch/bindwatch/test/testenv/runtimes"
)

// dockerService is a dockerd of the container's own, as Debian's docker.io
// runs it but with no bridge and no iptables (its containers use the host's
// network), and vfs storage (no overlay mounts to leave behind). Its state
// is at the default root, /var/lib/docker: containers/<id>/config.v2.json
// 0600 in 0710 and 0700 directories, root's alone, as on any host.
const dockerService = `[Unit]
Description=dockerd for bindwatch's workload test
[Service]
Type=notify
ExecStart=/usr/sbin/dockerd -H unix:///run/docker.sock --bridge=none --iptables=false --ip6tables=false --ip-masq=false --storage-driver=vfs
TimeoutStartSec=90s
`

// TestWorkloadUnderShippedUnit boots systemd in a container with the unit as
// shipped, the real agent (built without cgo, as released) and the shipped
// configuration; once the agent runs, it starts a real dockerd (Debian's
// docker.io) in the container, imports an image made of a static listener,
// and runs a container that listens as an unprivileged user. The agent,
// user bindwatch with the unit's capabilities, must publish that listen with
// the container's name, image and digest and workload_source docker, read
// from config.v2.json, which only root may read: through the unit's
// CAP_DAC_READ_SEARCH, effective only in dacread's open. The agent's own
// threads must not hold it effective. Then with no-workload.conf installed
// and the agent restarted: a new container's listen carries no workload
// (pending) and the journal says why.
func TestWorkloadUnderShippedUnit(t *testing.T) {
	inVM(t)
	testenv.RequireRoot(t)
	testenv.RequireTool(t, "systemd-nspawn", "systemd-container")
	testenv.RequireTool(t, "nsenter", "util-linux")
	testenv.RequireTool(t, "dockerd", "docker.io")
	testenv.RequireTool(t, "docker", "docker.io")
	if _, err := os.Stat("/sys/kernel/tracing/events"); err != nil {
		testenv.Unavailable(t, "needs tracefs mounted at /sys/kernel/tracing to bind into the container: %v", err)
	}
	rootfs := runtimes.RootFS(t, runtimes.Listener(t))
	// A unified cgroup hierarchy in the container, whatever the host has:
	// on this hybrid host nspawn would otherwise mount v1 controllers
	// read-only, where runc cannot make the container's cgroup.
	t.Setenv("SYSTEMD_NSPAWN_UNIFIED_HIERARCHY", "1")
	// And no system call filter of nspawn's own: it refuses keyctl, and
	// runc makes each container a session keyring ("unable to join
	// session keyring: operation not permitted"). The unit's filter, which
	// the container's systemd applies to the agent, is unchanged.
	t.Setenv("SYSTEMD_SECCOMP", "0")
	c, root, events := bootShippedWith(t, "bindwatch-access-"+strconv.Itoa(os.Getpid()), map[string]string{
		"etc/systemd/system/testdocker.service": dockerService,
	})
	os.Chmod(filepath.Join(root, "etc/systemd/system/testdocker.service"), 0o644)

	pid := c.waitActive(t, "")
	if c.hasCap(t, pid, unix.CAP_DAC_READ_SEARCH) {
		t.Errorf("the agent's main thread holds CAP_DAC_READ_SEARCH effective: %s", c.capEff(t, pid))
	}
	for _, task := range strings.Fields(c.run("ls", "/proc/"+pid+"/task")) {
		st := c.run("cat", "/proc/"+pid+"/task/"+task+"/status")
		eff, _ := fieldOf(st, "CapEff")
		prm, _ := fieldOf(st, "CapPrm")
		e, _ := strconv.ParseUint(eff, 16, 64)
		p, _ := strconv.ParseUint(prm, 16, 64)
		if e&(1<<unix.CAP_DAC_READ_SEARCH) != 0 || p&(1<<unix.CAP_DAC_READ_SEARCH) == 0 {
			t.Errorf("agent thread %s: CapEff %s CapPrm %s: want CAP_DAC_READ_SEARCH permitted, not effective", task, eff, prm)
		}
	}
	t.Logf("agent pid %d (container's numbering): CapEff %s", mustAtoi(t, pid), c.capEff(t, pid))

	// The runtime, started after the agent.
	if out, err := c.Command("systemctl", "start", "testdocker").CombinedOutput(); err != nil {
		testenv.Unavailable(t, "dockerd does not start in the container: %v %s\n%s", err, out,
			c.run("journalctl", "-u", "testdocker", "--no-pager", "-n", "40"))
	}
	imageID := c.docker(t, rootfs, "import", "--change", `ENTRYPOINT ["/listener"]`, "-", "docker.io/bindwatch/web:1.27")
	for _, p := range []string{"var/lib/docker", "var/lib/docker/containers"} {
		fi, err := os.Stat(filepath.Join(root, p))
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("/%s: %v", p, fi.Mode())
	}

	t.Run("as shipped", func(t *testing.T) {
		c := c.in(t)
		port, id := c.listenIn(t, "web")
		cfg := filepath.Join(root, "var/lib/docker/containers", id, "config.v2.json")
		if fi, err := os.Stat(cfg); err != nil {
			t.Fatal(err)
		} else {
			t.Logf("%s: %v, uid %d", strings.TrimPrefix(cfg, root), fi.Mode(), fi.Sys().(*syscall.Stat_t).Uid)
			if fi.Mode().Perm()&0o077 != 0 {
				t.Errorf("config.v2.json is %v: not root's alone, the test shows nothing", fi.Mode())
			}
		}
		listen := events.waitPort(t, port, "listen", 30*time.Second)
		t.Logf("listen record: %s", listen.workload())
		want := record{CgroupPath: listen.CgroupPath, ContainerID: &id, ContainerName: ptr("web"), Image: ptr("docker.io/bindwatch/web:1.27"),
			ImageDigest: &imageID, WorkloadSource: ptr("docker")}
		if got, w := listen.workload(), want.workload(); got != w {
			t.Errorf("the container's listen carries %s, want %s", got, w)
		}
		if j := c.agentLog(t, pid); strings.Contains(j, "runtime state not readable") || strings.Contains(j, "confining CAP_DAC_READ_SEARCH") {
			t.Errorf("the agent says:\n%s", j)
		}
	})

	// Why dacread also walks with openat: what openat2 does under the
	// unit's RestrictSUIDSGID=, which cannot see openat2's flags.
	for _, restrict := range []string{"no", "yes"} {
		out := c.run("systemd-run", "--wait", "--pipe", "--quiet", "--uid=bindwatch", "-p", "RestrictSUIDSGID="+restrict,
			"--setenv="+openat2Var+"=1", "/opt/bindwatch/standin")
		t.Logf("RestrictSUIDSGID=%s: %s", restrict, strings.TrimSpace(out))
	}

	// A compromised agent may raise CAP_DAC_READ_SEARCH itself: what stops
	// it reading the host's secrets is the unit's InaccessiblePaths= (an
	// empty file of mode 0000 mounted over each: the capability opens it,
	// and reads nothing). The same read with them left out shows that the
	// capability alone would let it.
	t.Run("a compromised agent", func(t *testing.T) {
		c := c.in(t)
		unit := readUnit(t)
		props := []string{"User=bindwatch", "NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes",
			"AmbientCapabilities=" + directive(unit, "AmbientCapabilities")[0],
			"CapabilityBoundingSet=" + directive(unit, "CapabilityBoundingSet")[0]}
		walls := directive(unit, "InaccessiblePaths")
		if len(walls) != 1 || !strings.Contains(walls[0], "/etc/shadow") {
			t.Fatalf("InaccessiblePaths= %q: want one line with /etc/shadow", walls)
		}
		for _, v := range []struct {
			name  string
			props []string
			read  bool
		}{
			{"the unit's sandbox", append(slices.Clone(props), "InaccessiblePaths="+walls[0]), false},
			{"no InaccessiblePaths=", props, true},
		} {
			args := []string{"systemd-run", "--wait", "--pipe", "--quiet", "--setenv=" + rawReadVar + "=/etc/shadow"}
			for _, p := range v.props {
				args = append(args, "-p", p)
			}
			out := strings.TrimSpace(c.run(append(args, "/opt/bindwatch/standin")...))
			t.Logf("/etc/shadow with %s: %s", v.name, out)
			// The container's /etc/shadow starts with root's entry.
			if strings.HasSuffix(out, `"root"`) != v.read {
				t.Errorf("with %s: %q, want its content read: %v", v.name, out, v.read)
			}
		}
	})

	t.Run("with "+noWorkloadDropIn, func(t *testing.T) {
		c := c.in(t)
		old := c.show()["MainPID"]
		dropIn := testenv.ReadFile(t, unitFile+".d/"+noWorkloadDropIn)
		if err := os.WriteFile(filepath.Join(root, "etc/systemd/system/bindwatch.service.d", noWorkloadDropIn), []byte(dropIn), 0o644); err != nil {
			t.Fatal(err)
		}
		c.run("systemctl", "daemon-reload")
		c.run("systemctl", "restart", "bindwatch")
		pid := c.waitActive(t, old)
		st := c.run("cat", "/proc/"+pid+"/status")
		if prm, _ := fieldOf(st, "CapPrm"); mustHex(t, prm)&(1<<unix.CAP_DAC_READ_SEARCH) != 0 {
			t.Fatalf("with %s the agent holds CAP_DAC_READ_SEARCH: CapPrm %s", noWorkloadDropIn, prm)
		}
		port, id := c.listenIn(t, "web2")
		listen := events.waitPort(t, port, "listen", 30*time.Second)
		t.Logf("listen record: %s", listen.workload())
		if listen.ContainerID == nil || *listen.ContainerID != id || listen.ContainerName != nil || listen.Image != nil ||
			listen.WorkloadSource == nil || *listen.WorkloadSource != "pending" {
			t.Errorf("without the capability the listen carries %s: want container %s, no name or image, workload_source pending", listen.workload(), id)
		}
		c.waitJournal(t, pid, "the state it cannot read", "runtime state not readable", "runtime state not readable")
	})
}

// rawReadVar makes the test binary read the named file as code running in
// the agent could, with every capability it holds effective (no
// dacread.Confine), and print how it went.
const rawReadVar = "BINDWATCH_TEST_CHILD_RAW_READ"

// openat2Var makes the test binary try openat2 and print how it went.
const openat2Var = "BINDWATCH_TEST_CHILD_OPENAT2"

func ptr(s string) *string { return &s }

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func mustHex(t *testing.T, s string) uint64 {
	t.Helper()
	n, err := strconv.ParseUint(s, 16, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// docker runs the docker client in the container against testdocker.
func (c *container) docker(t *testing.T, stdin []byte, args ...string) string {
	t.Helper()
	cmd := c.Command(append([]string{"docker", "-H", "unix:///run/docker.sock"}, args...)...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

var listeningLine = regexp.MustCompile(`listening 127\.0\.0\.1:(\d+)`)

// listenIn runs a container named name of the test image, as
// testenv.UserAccess on the host's network, listening on a TCP port of
// 127.0.0.1, then 3 s later on another, and returns the second port and
// the container's id. The second, because the agent, in the container's
// pid namespace, cannot look up the kernel's pids of a first sight in
// /proc as it does on a host: the first records of a new cgroup wait for
// its cgroup index's next scan and go out without it (its cgroup_path
// null), and the second listen is what a later record of the same
// container carries. A runtime that cannot run a container here skips the
// test with its error.
func (c *container) listenIn(t *testing.T, name string) (int, string) {
	t.Helper()
	user := fmt.Sprintf("%d:%d", testenv.UserAccess, testenv.UserAccess)
	cmd := c.Command("docker", "-H", "unix:///run/docker.sock", "run", "-d", "--name", name, "--network", "host",
		"--user", user, "docker.io/bindwatch/web:1.27", "tcp:127.0.0.1:0", "sleep:3s", "tcp:127.0.0.1:0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		testenv.Unavailable(t, "docker run in the container: %v\n%s\n%s", err, out,
			c.run("journalctl", "-u", "testdocker", "--no-pager", "-n", "30"))
	}
	id := strings.TrimSpace(string(out))
	// Gone before the container powers off: dockerd's stop would wait
	// 10 s for each.
	t.Cleanup(func() { c.Command("docker", "-H", "unix:///run/docker.sock", "rm", "-f", id).Run() })
	var port int
	testenv.Eventually(t, "the container listens", 20*time.Second, func() error {
		logs := c.docker(t, nil, "logs", id)
		m := listeningLine.FindAllStringSubmatch(logs, -1)
		if len(m) < 2 {
			return fmt.Errorf("container %s says %q", id, logs)
		}
		port, _ = strconv.Atoi(m[1][1])
		return nil
	})
	return port, id
}
