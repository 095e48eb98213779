package enrich

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/bindwatch/bindwatch/bpf"
	"github.com/bindwatch/bindwatch/schemas"
	"github.com/bindwatch/bindwatch/test/testenv"
)

// startSleeper starts a child that lives until the test kills it.
func startSleeper(t *testing.T, name string, args ...string) *testenv.Process {
	t.Helper()
	return testenv.Start(t, exec.Command(name, args...), 10*time.Second)
}

// handleCgroupID is the cgroup id as the kernel exports it in a file handle,
// the same number bpf_get_current_cgroup_id returns.
func handleCgroupID(t *testing.T, dir string) uint64 {
	t.Helper()
	h, _, err := unix.NameToHandleAt(unix.AT_FDCWD, dir, 0)
	if err != nil {
		t.Fatalf("name_to_handle_at %s: %v", dir, err)
	}
	if len(h.Bytes()) != 8 {
		t.Fatalf("cgroup file handle is %d bytes, want 8", len(h.Bytes()))
	}
	return binary.LittleEndian.Uint64(h.Bytes())
}

// A real cgroup named like a Docker scope, a real process moved into it,
// resolved while it lives and after it exited.
func TestNativeCgroupResolution(t *testing.T) {
	testenv.RequireRoot(t)
	mount, err := findCgroupMount("/proc")
	if err != nil {
		testenv.Unavailable(t, "needs a cgroup2 mount: %v", err)
	}
	slice := filepath.Join(mount.dir, "system.slice")
	if _, err := os.Stat(slice); errors.Is(err, os.ErrNotExist) {
		if err := os.Mkdir(slice, 0o755); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = os.Remove(slice) })
	}
	var raw [32]byte
	_, _ = rand.Read(raw[:])
	cid := hex.EncodeToString(raw[:])
	scope := filepath.Join(slice, "docker-"+cid+".scope")
	if err := os.Mkdir(scope, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.Remove(scope); err != nil {
			t.Errorf("removing the test cgroup: %v", err)
		}
	})

	child := startSleeper(t, "sleep", "60")
	pid := uint32(child.Pid())
	if err := os.WriteFile(filepath.Join(scope, "cgroup.procs"), []byte(strconv.Itoa(int(pid))), 0o644); err != nil {
		t.Fatalf("moving pid %d into %s: %v", pid, scope, err)
	}
	id, err := cgroupDirID(scope)
	if err != nil {
		t.Fatal(err)
	}
	if hid := handleCgroupID(t, scope); hid != id {
		t.Fatalf("inode %d but file handle id %d: the inode is not the cgroup id here", id, hid)
	}
	wantPath := mount.pathOf(strings.TrimPrefix(scope, mount.dir+"/"))
	ppid := uint32(os.Getpid())

	check := func(what string, info *cgroupInfo) {
		t.Helper()
		if info == nil {
			t.Fatalf("%s: not resolved", what)
		}
		if info.path != wantPath || deref(info.containerID) != cid || deref(info.runtime) != RuntimeDocker {
			t.Errorf("%s: %q, %q, %q; want %q, %q, docker", what, info.path,
				deref(info.containerID), deref(info.runtime), wantPath, cid)
		}
	}

	live := newCgroupResolver("/proc", mount, 64, time.Second, nil)
	info, src := live.resolve(id, pid, ppid)
	if src != sourceProc {
		t.Errorf("live process resolved by %d, want /proc", src)
	}
	check("live", info)
	if info, hit, _ := live.lookup(id, pid, ppid); hit {
		t.Fatal("empty cache hit")
	} else {
		check("live lookup", info)
	}

	// Through the whole stage, on the real host files.
	e, err := New(Config{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	var rec schemas.BindEvent
	e.Enrich(&bpf.Event{CgroupID: id, PID: pid, PPID: ppid, Family: bpf.AFInet}, &rec)
	if deref(rec.ContainerID) != cid || deref(rec.ContainerRuntime) != RuntimeDocker {
		t.Errorf("Enrich: container %q %q", deref(rec.ContainerID), deref(rec.ContainerRuntime))
	}

	child.Kill(t)
	if _, err := os.Stat("/proc/" + strconv.Itoa(int(pid))); err == nil {
		t.Fatalf("pid %d still in /proc after wait", pid)
	}
	if info, hit, _ := live.lookup(id, pid, ppid); !hit {
		t.Error("cached answer lost after exit")
	} else {
		check("cached after exit", info)
	}
	fresh := newCgroupResolver("/proc", mount, 64, time.Second, nil)
	info, src = fresh.resolve(id, pid, ppid)
	if src != sourceIndex {
		t.Errorf("exited process resolved by %d, want the walk", src)
	}
	check("exited", info)
}

// A network namespace with veth devices, one up and one down, named from the
// agent's side through a process inside it.
func TestNativeIfnameOtherNamespace(t *testing.T) {
	testenv.RequireRoot(t)
	ipPath := testenv.RequireTool(t, "ip", "iproute2")
	ip := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(ipPath, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	ns := "bwenrich" + strconv.Itoa(os.Getpid())
	ip("netns", "add", ns)
	t.Cleanup(func() { _ = exec.Command(ipPath, "netns", "del", ns).Run() })
	ip("-n", ns, "link", "add", "bwveth0", "type", "veth", "peer", "name", "bwveth1")
	ip("-n", ns, "link", "set", "lo", "up")
	ip("-n", ns, "link", "set", "bwveth0", "up")
	index := func(dev string) uint32 {
		out := ip("-n", ns, "-o", "link", "show", dev)
		n, err := strconv.ParseUint(out[:strings.IndexByte(out, ':')], 10, 32)
		if err != nil {
			t.Fatalf("index of %s in %q: %v", dev, out, err)
		}
		return uint32(n)
	}
	up, down := index("bwveth0"), index("bwveth1")

	child := startSleeper(t, ipPath, "netns", "exec", ns, "sleep", "60")
	pid := uint32(child.Pid())
	self, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	var netns uint32
	testenv.Eventually(t, "the child in the namespace", 5*time.Second, func() bool {
		target, err := os.Readlink("/proc/" + strconv.Itoa(int(pid)) + "/ns/net")
		if err == nil && target != self {
			netns, _ = ParseNetNSLink(target)
			return true
		}
		return false
	})

	r := newIfnameResolver("/proc", 64, time.Minute, time.Second)
	for _, tt := range []struct {
		index uint32
		want  string
	}{{up, "bwveth0"}, {down, "bwveth1"}, {1, "lo"}} {
		name, _ := r.lookup(netns, tt.index, pid, 0)
		if deref(name) != tt.want {
			t.Errorf("index %d in %s: %q, want %q", tt.index, ns, deref(name), tt.want)
		}
	}
	if name, _ := r.lookup(netns, 999, pid, 0); name != nil {
		t.Errorf("absent index named %q", *name)
	}
	child.Kill(t)
	if name, hit := r.lookup(netns, up, pid, 0); !hit || deref(name) != "bwveth0" {
		t.Errorf("after exit: %q, hit=%v; want the cached name", deref(name), hit)
	}
}

// The agent's own namespace is asked over netlink.
func TestNativeIfnameOwnNamespace(t *testing.T) {
	r := newIfnameResolver("/proc", 64, time.Minute, time.Second)
	if r.selfNetNS == 0 {
		testenv.Unavailable(t, "cannot read /proc/self/ns/net")
	}
	name, hit := r.lookup(r.selfNetNS, 1, uint32(os.Getpid()), 0)
	if hit || deref(name) != "lo" {
		t.Errorf("index 1: %q, hit=%v; want lo from netlink", deref(name), hit)
	}
}
