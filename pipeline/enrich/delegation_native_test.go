package enrich

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bindwatch/bindwatch/bpf"
	"github.com/bindwatch/bindwatch/schemas"
	"github.com/bindwatch/bindwatch/test/testenv"
)

// childPython runs the binding children: the system's, which any uid can
// execute (the python3 first on root's PATH may live under /root).
const childPython = "/usr/bin/python3"

// delegatedUID is the user the test delegates a cgroup subtree to, as
// systemd does to user@UID.service.
const delegatedUID = 1999

// TestNativeDelegatedCgroupForgery is the attack: a user makes, in the
// cgroup subtree systemd delegated to it, cgroups named like a runtime's
// containers, and binds from them. The records must not say docker or
// containerd, nor carry the chosen (copyable) container id; they must say
// where the attribution came from (cgroup_path) and whose subtree it is
// (cgroup_owner_uid). A root-owned Docker scope beside it still says docker,
// and rootless Podman's scope says podman-rootless.
func TestNativeDelegatedCgroupForgery(t *testing.T) {
	testenv.RequireRoot(t)
	mount, err := findCgroupMount("/proc")
	if err != nil {
		testenv.Unavailable(t, "needs a cgroup2 mount: %v", err)
	}
	if mount.root != "/" {
		testenv.Unavailable(t, "needs the whole cgroup2 hierarchy, the mount shows %s", mount.root)
	}
	if _, err := os.Stat(childPython); err != nil {
		testenv.Unavailable(t, "needs Debian's python3 at %s: %v", childPython, err)
	}

	hexID := func() string {
		var raw [32]byte
		_, _ = rand.Read(raw[:])
		return hex.EncodeToString(raw[:])
	}
	// One top directory of the test's own holds everything: a real
	// user.slice on the host is not touched, and removing it removes all.
	top := fmt.Sprintf("bindwatch-test-delegation-%d-%s.slice", os.Getpid(), hexID()[:8])
	service := top + "/user.slice/user-1999.slice/user@1999.service"
	var made []string // every directory created, parents first
	t.Cleanup(func() {
		for i := len(made) - 1; i >= 0; i-- {
			if err := os.Remove(filepath.Join(mount.dir, made[i])); err != nil && !errors.Is(err, os.ErrNotExist) {
				t.Errorf("removing test cgroup %s: %v", made[i], err)
			}
		}
	})
	mkdirs := func(rel string, uid int) {
		t.Helper()
		parts := strings.Split(rel, "/")
		for i := range parts {
			p := strings.Join(parts[:i+1], "/")
			dir := filepath.Join(mount.dir, p)
			if _, err := os.Stat(dir); err == nil {
				continue
			}
			made = append(made, p)
			if uid == 0 {
				if err := os.Mkdir(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				continue
			}
			// The user makes its own cgroups, as any process of it may in
			// its delegated subtree.
			cmd := exec.Command("mkdir", dir)
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid)}}
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("mkdir %s as uid %d: %v: %s", p, uid, err, out)
			}
		}
	}
	// What systemd does for user@1999.service: a root-owned path down to a
	// directory owned by the user, with the files that let it manage its
	// subtree.
	mkdirs(service, 0)
	for _, f := range []string{"", "cgroup.procs", "cgroup.subtree_control", "cgroup.threads"} {
		if err := os.Chown(filepath.Join(mount.dir, service, f), delegatedUID, delegatedUID); err != nil {
			t.Fatal(err)
		}
	}

	forged := hexID()
	cases := []struct {
		name, rel   string
		creator     int // uid that makes the directories below what exists
		runtime, id string
		owner       int64 // -1: null
	}{
		{name: "user's docker scope", rel: service + "/app.slice/docker-" + forged + ".scope", creator: delegatedUID, owner: delegatedUID},
		{name: "user's kubepods pod", rel: service + "/kubepods/pod1234/" + forged, creator: delegatedUID, owner: delegatedUID},
		{name: "user's docker dir", rel: service + "/docker/" + forged, creator: delegatedUID, owner: delegatedUID},
		{name: "root's docker scope", rel: top + "/system.slice/docker-" + forged + ".scope", creator: 0, runtime: RuntimeDocker, id: forged, owner: -1},
		{name: "rootless podman", rel: service + "/user.slice/libpod-" + forged + ".scope", creator: delegatedUID, runtime: RuntimePodmanRootless, id: forged, owner: delegatedUID},
	}

	p, err := bpf.Load(bpf.Options{Hook: bpf.HookAuto, Filter: bpf.Filter{UID: delegatedUID, HasUID: true}, Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("loading the probe: %v", err)
	}
	defer p.Close()
	rd, err := p.NewReader()
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	e, err := New(Config{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mkdirs(tc.rel, tc.creator)
			dir := filepath.Join(mount.dir, tc.rel)
			pid, port := bindInCgroup(t, dir, delegatedUID)
			ev := readPID(t, rd, uint32(pid))
			if ev.Port != port {
				t.Fatalf("record of port %d, the child bound %d", ev.Port, port)
			}
			if id, err := cgroupDirID(dir); err != nil || ev.CgroupID != id {
				t.Fatalf("record's cgroup id %d, %s has %d (%v)", ev.CgroupID, tc.rel, id, err)
			}
			var rec schemas.BindEvent
			e.Enrich(&ev, &rec)
			t.Logf("%s: container_runtime %q container_id %q cgroup_path %q cgroup_owner_uid %s",
				tc.rel, deref(rec.ContainerRuntime), deref(rec.ContainerID), deref(rec.CgroupPath), ownerText(rec.CgroupOwnerUID))
			if got := deref(rec.ContainerRuntime); got != tc.runtime {
				t.Errorf("container_runtime %q, want %q", got, tc.runtime)
			}
			if got := deref(rec.ContainerID); got != tc.id {
				t.Errorf("container_id %q, want %q", got, tc.id)
			}
			if got, want := deref(rec.CgroupPath), "/"+tc.rel; got != want {
				t.Errorf("cgroup_path %q, want %q", got, want)
			}
			if got, want := ownerText(rec.CgroupOwnerUID), ownerText(optOwner(tc.owner)); got != want {
				t.Errorf("cgroup_owner_uid %s, want %s", got, want)
			}
		})
	}
}

func optOwner(uid int64) *int64 {
	if uid < 0 {
		return nil
	}
	return &uid
}

func ownerText(p *int64) string {
	if p == nil {
		return "null"
	}
	return strconv.FormatInt(*p, 10)
}

// bindInCgroup starts, in cgroup dir and as uid, a process that binds a TCP
// socket to 127.0.0.1:0 and stays until the test ends; it returns the
// process's pid and port.
func bindInCgroup(t *testing.T, dir string, uid uint32) (int, uint16) {
	t.Helper()
	cg, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer cg.Close()
	const script = `import socket, sys
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1], flush=True)
sys.stdin.read()
`
	cmd := exec.Command(childPython, "-c", script)
	cmd.SysProcAttr = &syscall.SysProcAttr{
		UseCgroupFD: true, CgroupFD: int(cg.Fd()),
		Credential: &syscall.Credential{Uid: uid, Gid: uid},
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting a child in %s: %v", dir, err)
	}
	// The child must be gone before its cgroup can be removed.
	t.Cleanup(func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	port, err := strconv.ParseUint(strings.TrimSpace(line), 10, 16)
	if err != nil {
		t.Fatalf("child printed %q: %v", line, err)
	}
	return cmd.Process.Pid, uint16(port)
}

// readPID reads records until pid's bind, skipping other processes'.
func readPID(t *testing.T, rd *bpf.Reader, pid uint32) bpf.Event {
	t.Helper()
	rd.SetDeadline(time.Now().Add(5 * time.Second))
	defer rd.SetDeadline(time.Time{})
	for {
		var ev bpf.Event
		if err := rd.Read(&ev); err != nil {
			t.Fatalf("reading the bind of pid %d: %v", pid, err)
		}
		rd.CommitAll()
		if ev.PID == pid && ev.Kind == bpf.KindBind {
			return ev
		}
	}
}
