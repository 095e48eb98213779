package bpf

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/bindwatch/bindwatch/test/testenv"
	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// bindOnce binds a fresh socket of kind s to ap in this process and returns
// bind's error.
func bindOnce(t *testing.T, s socketSpec, ap string) error {
	t.Helper()
	fd := s.open(t)
	return bindAddr(fd, s.family, netip.MustParseAddrPort(ap))
}

func TestFilters(t *testing.T) {
	for _, hook := range testHooks(t) {
		t.Run(string(hook), func(t *testing.T) { testFilters(t, hook) })
	}
}

// testFilters drives one probe through the filters, changing them live with
// SetFilter as a SIGHUP reload would.
func testFilters(t *testing.T, hook Hook) {
	self := uint32(os.Getpid())
	c := newCapturer(t, hook, Filter{PID: self})
	set := func(t *testing.T, f Filter) {
		t.Helper()
		c.t = t
		if err := c.probe.SetFilter(f); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("pid", func(t *testing.T) {
		set(t, Filter{PID: self})
		evs := c.during(func() {
			runChild(t, "tcp4 127.0.0.1:0", nil)
			if err := bindOnce(t, tcp4, "127.0.0.1:0"); err != nil {
				t.Fatal(err)
			}
		})
		if len(evs) != 1 || evs[0].PID != self {
			t.Fatalf("pid filter %d: got %+v, want only this process's bind", self, evs)
		}
	})

	t.Run("uid", func(t *testing.T) {
		const nobody = 65534
		set(t, Filter{UID: nobody, HasUID: true})
		var childPID int
		evs := c.during(func() {
			childPID = runChild(t, "udp4 127.0.0.1:0", &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}})
			if err := bindOnce(t, udp4, "127.0.0.1:0"); err != nil {
				t.Fatal(err)
			}
		})
		if len(evs) != 1 || evs[0].UID != nobody || evs[0].GID != nobody || evs[0].PID != uint32(childPID) {
			t.Fatalf("uid filter %d: got %+v, want only child %d's bind", nobody, evs, childPID)
		}
	})

	t.Run("uid 0 is a filter, not its absence", func(t *testing.T) {
		set(t, Filter{UID: 0, HasUID: true})
		var child int
		evs := c.during(func() {
			child = runChild(t, "udp4 127.0.0.1:0", &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}})
		})
		// Other root processes on the machine (tests of other packages
		// run in parallel) are rightly reported meanwhile: only the
		// child's bind must be absent.
		for _, ev := range evs {
			if ev.PID == uint32(child) || ev.UID != 0 {
				t.Fatalf("uid filter 0 reported a bind by uid %d (the child is pid %d): %+v", ev.UID, child, ev)
			}
		}
	})

	t.Run("ports match effective or requested port", func(t *testing.T) {
		wanted, taken, other := freePort(t, tcp4), freePort(t, tcp4), freePort(t, tcp4)
		set(t, Filter{PID: self, Ports: []uint16{wanted, taken}, Errors: true})
		evs := c.during(func() {
			for _, ap := range []string{fmt.Sprint("127.0.0.1:", wanted), fmt.Sprint("127.0.0.1:", taken), fmt.Sprint("127.0.0.1:", other)} {
				if err := bindOnce(t, tcp4, ap); err != nil {
					t.Fatal(err)
				}
			}
			if err := bindOnce(t, tcp4, fmt.Sprint("127.0.0.1:", taken)); err != unix.EADDRINUSE {
				t.Fatalf("second bind to %d: %v, want EADDRINUSE", taken, err)
			}
			if err := bindOnce(t, tcp4, "127.0.0.1:0"); err != nil {
				t.Fatal(err)
			}
		})
		var got []string
		for _, ev := range evs {
			got = append(got, fmt.Sprintf("port=%d req=%d ret=%d", ev.Port, ev.ReqPort, ev.Ret))
		}
		want := []string{
			fmt.Sprintf("port=%d req=%d ret=0", wanted, wanted),
			fmt.Sprintf("port=%d req=%d ret=0", taken, taken),
			fmt.Sprintf("port=0 req=%d ret=-98", taken),
		}
		if strings.Join(got, "; ") != strings.Join(want, "; ") {
			t.Fatalf("ports filter %d,%d:\n got  %s\n want %s", wanted, taken, strings.Join(got, "; "), strings.Join(want, "; "))
		}
	})

	t.Run("errors off hides failed binds", func(t *testing.T) {
		port := freePort(t, udp4)
		set(t, Filter{PID: self})
		evs := c.during(func() {
			if err := bindOnce(t, udp4, fmt.Sprint("127.0.0.1:", port)); err != nil {
				t.Fatal(err)
			}
			fd := udp4.open(t)
			if err := bindAddr(fd, unix.AF_INET, netip.MustParseAddrPort(fmt.Sprint("127.0.0.1:", port))); err != unix.EADDRINUSE {
				t.Fatalf("bind: %v, want EADDRINUSE", err)
			}
		})
		if len(evs) != 1 || evs[0].Ret != 0 {
			t.Fatalf("errors off: got %+v, want only the successful bind", evs)
		}
	})

	t.Run("cgroup map", func(t *testing.T) { testCgroupMap(t, hook) })
	t.Run("mount namespace map", func(t *testing.T) { testMntNSMap(t, hook) })
}

// pinnedSet creates a hash map shaped like bcc's --cgroupmap/--mntnsmap maps,
// pinned under bpffs, removed at the end of the test.
func pinnedSet(t *testing.T, name string, valueSize uint32) (*ebpf.Map, string) {
	t.Helper()
	mustBPFFS(t)
	m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Hash, KeySize: 8, ValueSize: valueSize, MaxEntries: 16})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	path := filepath.Join("/sys/fs/bpf", fmt.Sprintf("bindwatch-test-%s-%d", name, os.Getpid()))
	if err := m.Pin(path); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Unpin() })
	return m, path
}

func mustBPFFS(t *testing.T) {
	t.Helper()
	if err := ensureBPFFS("/sys/fs/bpf/bindwatch-test"); err != nil {
		t.Fatal(err)
	}
}

func testCgroupMap(t *testing.T, hook Hook) {
	set, path := pinnedSet(t, "cgroupmap", 8)
	dir := filepath.Join(testenv.Cgroup2Mount(t), fmt.Sprintf("bindwatch-test-%d", os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(dir) })
	cg, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer cg.Close()
	id := cgroupID(t, dir)
	if err := set.Put(id, uint64(1)); err != nil {
		t.Fatal(err)
	}

	c := newCapturer(t, hook, Filter{CgroupMap: path})
	var childPID int
	evs := c.during(func() {
		childPID = runChild(t, "tcp6 [::1]:0", &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(cg.Fd())})
		if err := bindOnce(t, tcp6, "[::1]:0"); err != nil {
			t.Fatal(err)
		}
	})
	if len(evs) != 1 || evs[0].PID != uint32(childPID) || evs[0].CgroupID != id {
		t.Fatalf("cgroup map with cgroup %d: got %+v, want only child %d's bind", id, evs, childPID)
	}
}

func testMntNSMap(t *testing.T, hook Hook) {
	set, path := pinnedSet(t, "mntnsmap", 4)
	c := newCapturer(t, hook, Filter{MntNSMap: path})
	var ns uint32
	var childPID int
	evs := c.during(func() {
		ch := startChild(t, "udp6 [::1]:0", &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWNS}, true)
		childPID = ch.Pid()
		ns = nsInode(t, childPID, "mnt")
		if err := set.Put(uint64(ns), uint32(1)); err != nil {
			t.Fatal(err)
		}
		ch.release(t)
		ch.wait(t)
		if err := bindOnce(t, udp6, "[::1]:0"); err != nil {
			t.Fatal(err)
		}
	})
	if len(evs) != 1 || evs[0].PID != uint32(childPID) || evs[0].MntNS != ns {
		t.Fatalf("mount namespace map with ns %d: got %+v, want only child %d's bind", ns, evs, childPID)
	}
}

func TestPinnedMapErrors(t *testing.T) {
	testenv.RequireRoot(t)
	mustBPFFS(t)
	missing := "/sys/fs/bpf/bindwatch-no-such-map"
	for _, f := range []Filter{{CgroupMap: missing}, {MntNSMap: missing}} {
		_, err := Load(Options{Filter: f})
		if err == nil || !strings.Contains(err.Error(), missing) || !strings.Contains(err.Error(), "does not exist") {
			t.Errorf("Load(%+v) = %v, want an error naming %s as missing", f, err, missing)
		}
	}
	arr, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer arr.Close()
	path := filepath.Join("/sys/fs/bpf", fmt.Sprintf("bindwatch-test-array-%d", os.Getpid()))
	if err := arr.Pin(path); err != nil {
		t.Fatal(err)
	}
	defer arr.Unpin()
	_, err = Load(Options{Filter: Filter{CgroupMap: path}})
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "want a hash map") {
		t.Errorf("Load with an array map = %v, want an error naming %s and the expected map type", err, path)
	}
}
