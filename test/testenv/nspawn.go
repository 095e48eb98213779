package testenv

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Mount mounts source at target (created if missing) until the end of the
// test. A mount the host refuses makes the test Unavailable.
func Mount(t testing.TB, source, target, fstype string, flags uintptr, data string) {
	t.Helper()
	if err := os.MkdirAll(target, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount(source, target, fstype, flags, data); err != nil {
		Unavailable(t, "mounting %s at %s: %v", source, target, err)
	}
	t.Cleanup(func() { unix.Unmount(target, unix.MNT_DETACH) })
}

// ContainerEtc is the /etc that systemd in a BootContainer root needs, as
// file contents by path under the root: root and nobody with their groups
// and shadow entries, the host name, and a machine-id.
func ContainerEtc(hostname string) map[string]string {
	return map[string]string{
		"etc/passwd":   "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
		"etc/group":    "root:x:0:\nnogroup:x:65534:\n",
		"etc/shadow":   "root:*:19000:0:99999:7:::\n",
		"etc/gshadow":  "root:*::\n",
		"etc/hostname": hostname + "\n",
		// Not empty: an empty machine-id is a first boot, which enables
		// every service the host's /usr has presets for.
		"etc/machine-id": fmt.Sprintf("%032x\n", time.Now().UnixNano()),
	}
}

// Container is systemd booted by systemd-nspawn in a directory tree, reached
// through nsenter, which needs no machined on the host.
type Container struct {
	Init    int // the container's systemd, as the host numbers it
	nsenter string
	console *syncBuffer
}

// BootContainer boots systemd in root with systemd-nspawn and returns once
// the container's PID 1 runs. The container shares the host's network, has
// the host's tracefs, bpffs (a bpffs the caller mounted) as /sys/fs/bpf, and
// CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN and the bpf and perf_event_open system
// calls: what a host grants its own services, and nspawn keeps from its
// containers by default (CAP_NET_ADMIN only with a private network). A cleanup, registered after the caller's mounts and so run before
// they go, powers it off and logs the console's tail if the test failed.
func BootContainer(t testing.TB, root, bpffs, machine string) *Container {
	t.Helper()
	nspawn := RequireTool(t, "systemd-nspawn", "systemd-container")
	c := &Container{nsenter: RequireTool(t, "nsenter", "util-linux"), console: &syncBuffer{}}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	boot := exec.CommandContext(ctx, nspawn, "-D", root, "--boot", "--register=no", "--keep-unit",
		"--machine="+machine,
		"--capability=CAP_BPF,CAP_PERFMON,CAP_NET_ADMIN", "--system-call-filter=bpf perf_event_open pidfd_getfd",
		// What the host's systemd mounts at boot and a container lacks.
		"--bind=/sys/kernel/tracing", "--bind="+bpffs+":/sys/fs/bpf",
		"--console=read-only")
	boot.Stdout, boot.Stderr = c.console, c.console
	if err := boot.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- boot.Wait() }()
	t.Cleanup(func() {
		defer cancel()
		boot.Process.Signal(unix.SIGTERM) // nspawn powers the container off
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			boot.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("container console:\n%s", c.ConsoleTail(60))
		}
	})
	c.Init = c.findInit(t, boot.Process.Pid, exited)
	return c
}

// findInit waits for nspawn's child, the container's PID 1.
func (c *Container) findInit(t testing.TB, nspawnPID int, exited <-chan error) int {
	t.Helper()
	var init int
	Eventually(t, "the container's systemd started", 30*time.Second, func() bool {
		select {
		case err := <-exited:
			t.Fatalf("systemd-nspawn exited: %v\n%s", err, c.ConsoleTail(40))
		default:
		}
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", nspawnPID, nspawnPID))
		for _, f := range strings.Fields(string(b)) {
			pid, _ := strconv.Atoi(f)
			if comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); strings.TrimSpace(string(comm)) == "systemd" {
				init = pid
				return true
			}
		}
		return false
	})
	return init
}

// Command is a command to run in every namespace of the container.
func (c *Container) Command(args ...string) *exec.Cmd {
	return exec.Command(c.nsenter, append([]string{"-t", strconv.Itoa(c.Init), "-a"}, args...)...)
}

// ConsoleTail is the last n lines the container wrote to its console.
func (c *Container) ConsoleTail(n int) string { return c.console.tail(n) }

// syncBuffer collects a child's output (the console, a Process's streams)
// while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (s *syncBuffer) tail(n int) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	lines := strings.Split(s.b.String(), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
