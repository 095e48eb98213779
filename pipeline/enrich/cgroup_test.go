package enrich

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// cgroupTree is a temporary directory standing in for the cgroup2 mount,
// beside a fake procfs: the inode numbers are real, as on cgroupfs.
type cgroupTree struct {
	t     testing.TB
	mount string
	proc  string
	// owners are the directories given to a user, by path relative to
	// mount: a test cannot chown, so the tree's trust reads them here.
	owners map[string]uint32
}

func newCgroupTree(t testing.TB, dirs ...string) *cgroupTree {
	t.Helper()
	base := t.TempDir()
	tr := &cgroupTree{t: t, mount: filepath.Join(base, "cgroup"), proc: filepath.Join(base, "proc"), owners: map[string]uint32{}}
	for _, d := range append(dirs, ".") {
		if err := os.MkdirAll(filepath.Join(tr.mount, d), 0o755); err != nil {
			t.Fatal(err)
		}
		// cgroupfs directories are full of control files; the walk must skip them.
		for _, f := range []string{"cgroup.procs", "cgroup.controllers", "memory.max"} {
			if err := os.WriteFile(filepath.Join(tr.mount, d, f), nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return tr
}

func (tr *cgroupTree) id(dir string) uint64 {
	tr.t.Helper()
	id, err := cgroupDirID(filepath.Join(tr.mount, dir))
	if err != nil {
		tr.t.Fatal(err)
	}
	return id
}

// process writes /proc/<pid>/cgroup as a hybrid host would.
func (tr *cgroupTree) process(pid uint32, cgroupPath string) {
	tr.t.Helper()
	dir := filepath.Join(tr.proc, strconv.Itoa(int(pid)))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tr.t.Fatal(err)
	}
	text := "4:memory:/whatever\n1:name=systemd:" + cgroupPath + "\n0::" + cgroupPath + "\n"
	if err := os.WriteFile(filepath.Join(dir, "cgroup"), []byte(text), 0o644); err != nil {
		tr.t.Fatal(err)
	}
}

func (tr *cgroupTree) exit(pid uint32) {
	tr.t.Helper()
	if err := os.RemoveAll(filepath.Join(tr.proc, strconv.Itoa(int(pid)))); err != nil {
		tr.t.Fatal(err)
	}
}

func (tr *cgroupTree) resolver(size int) *cgroupResolver {
	r := newCgroupResolver(tr.proc, cgroupMount{dir: tr.mount, root: "/"}, size, 5*time.Second, nil)
	r.trust = tr.trust()
	return r
}

// delegate makes rel (relative to the mount) as if systemd had given it to uid.
func (tr *cgroupTree) delegate(rel string, uid uint32) {
	tr.owners[filepath.Join(tr.mount, rel)] = uid
}

// trust reads owners from tr.owners, else from the directories (all the
// test's own, as the mount's root is).
func (tr *cgroupTree) trust() *cgroupTrust {
	return newCgroupTrust(cgroupMount{dir: tr.mount, root: "/"}, func(dir string) (uint32, error) {
		uid, err := statOwner(dir)
		if o, ok := tr.owners[dir]; ok && err == nil {
			return o, nil
		}
		return uid, err
	})
}

// useIn makes e's resolvers read owners as tr's trust does.
func (tr *cgroupTree) useIn(e *Enricher) {
	trust := tr.trust()
	trust.files = e.cgroups.trust.files
	e.cgroups.trust = trust
	if e.cgroupBG != nil {
		e.cgroupBG.trust = trust
	}
}

var (
	dockerScope = "system.slice/docker-" + idA + ".scope"
	dockerInit  = dockerScope + "/init.scope"
	k8sLeaf     = "kubepods/burstable/pod1c7f0e2a-5b3d-4e8f-9a6c-2d1b0e3f4a5c/" + idB
	nginx       = "system.slice/nginx.service"
)

func TestCgroupResolve(t *testing.T) {
	tr := newCgroupTree(t, dockerInit, k8sLeaf, nginx, "user.slice/user-1000.slice/session-2.scope")
	tr.process(100, "/"+dockerScope)
	tr.process(101, "/"+dockerInit)
	tr.process(300, "/"+nginx) // a reused pid: now in another cgroup
	tr.process(400, "/"+k8sLeaf)

	tests := []struct {
		name      string
		id        uint64
		pid, ppid uint32
		path      string
		source    cgroupSource
		container string
		runtime   string
	}{
		{"live process", tr.id(dockerScope), 100, 1, "/" + dockerScope, sourceProc, idA, RuntimeDocker},
		{"container sub-cgroup", tr.id(dockerInit), 101, 1, "/" + dockerInit, sourceProc, idA, RuntimeDocker},
		{"exited, found by inode", tr.id(k8sLeaf), 200, 1, "/" + k8sLeaf, sourceIndex, idB, RuntimeContainerd},
		{"exited, parent in the same cgroup", tr.id(k8sLeaf), 200, 400, "/" + k8sLeaf, sourceProc, idB, RuntimeContainerd},
		{"pid reused by a process elsewhere", tr.id(dockerScope), 300, 1, "/" + dockerScope, sourceIndex, idA, RuntimeDocker},
		{"parent elsewhere is not trusted", tr.id(nginx), 200, 100, "/" + nginx, sourceIndex, "", ""},
		{"root cgroup", tr.id("."), 200, 1, "/", sourceIndex, "", ""},
		{"no such cgroup", 1 << 40, 200, 1, "", sourceNone, "", ""},
		{"id zero, even with a live process", 0, 100, 1, "", sourceNone, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tr.resolver(16)
			info, source := r.resolve(tt.id, tt.pid, tt.ppid)
			if source != tt.source {
				t.Errorf("source %d, want %d", source, tt.source)
			}
			if tt.path == "" {
				if info != nil {
					t.Errorf("resolved to %+v, want nothing", info)
				}
				return
			}
			if info == nil {
				t.Fatal("not resolved")
			}
			if info.path != tt.path {
				t.Errorf("path %q, want %q", info.path, tt.path)
			}
			if got, want := deref(info.containerID), tt.container; got != want {
				t.Errorf("container %q, want %q", got, want)
			}
			if got, want := deref(info.runtime), tt.runtime; got != want {
				t.Errorf("runtime %q, want %q", got, want)
			}
		})
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func TestCgroupCacheOutlivesProcessAndCgroup(t *testing.T) {
	tr := newCgroupTree(t, dockerScope)
	tr.process(100, "/"+dockerScope)
	id := tr.id(dockerScope)
	r := tr.resolver(16)
	if info, hit, _ := r.lookup(id, 100, 1); info == nil || hit {
		t.Fatalf("first lookup: %+v, hit=%v; want a resolved miss", info, hit)
	}
	tr.exit(100)
	if err := os.RemoveAll(filepath.Join(tr.mount, dockerScope)); err != nil {
		t.Fatal(err)
	}
	info, hit, _ := r.lookup(id, 100, 1)
	if !hit || info == nil || deref(info.containerID) != idA {
		t.Fatalf("after exit: %+v, hit=%v; want the cached container", info, hit)
	}
}

func TestCgroupNegativeCacheExpires(t *testing.T) {
	tr := newCgroupTree(t, dockerScope, "parked")
	id := tr.id(dockerScope)
	// Move the cgroup out of the tree: same inode, not findable.
	away := filepath.Join(filepath.Dir(tr.mount), "away")
	if err := os.Rename(filepath.Join(tr.mount, dockerScope), away); err != nil {
		t.Fatal(err)
	}
	r := tr.resolver(16)
	now := time.Now()
	r.now = func() time.Time { return now }

	info, hit, deferred := r.lookup(id, 200, 1)
	if info != nil || hit || !deferred {
		t.Fatalf("unknown id: %+v, hit=%v, deferred=%v; want it deferred to the background", info, hit, deferred)
	}
	r.store(id, nil) // the background resolver's answer: unknown
	if err := os.Rename(away, filepath.Join(tr.mount, dockerScope)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.index.scan(); err != nil {
		t.Fatal(err)
	}
	now = now.Add(4 * time.Second)
	if info, hit, _ := r.lookup(id, 200, 1); info != nil || !hit {
		t.Fatalf("within the negative TTL: %+v, hit=%v; want the cached failure", info, hit)
	}
	now = now.Add(2 * time.Second)
	info, hit, _ = r.lookup(id, 200, 1)
	if hit || info == nil || deref(info.containerID) != idA {
		t.Fatalf("after the negative TTL: %+v, hit=%v; want a fresh resolution", info, hit)
	}
}

func TestCgroupCacheIsBounded(t *testing.T) {
	dirs := []string{"a.slice", "b.slice", "c.slice"}
	tr := newCgroupTree(t, dirs...)
	r := tr.resolver(2)
	for _, d := range dirs {
		if _, hit, _ := r.lookup(tr.id(d), 200, 1); hit {
			t.Fatalf("%s: unexpected hit", d)
		}
	}
	if n := r.cache.len(); n != 2 {
		t.Errorf("cache holds %d entries, cap 2", n)
	}
	// a.slice was least recently used and went first.
	if _, hit, _ := r.lookup(tr.id("c.slice"), 200, 1); !hit {
		t.Error("c.slice evicted")
	}
	if _, hit, _ := r.lookup(tr.id("a.slice"), 200, 1); hit {
		t.Error("a.slice still cached past the cap")
	}
}

func TestCgroupWithoutMount(t *testing.T) {
	tr := newCgroupTree(t, dockerScope)
	tr.process(100, "/"+dockerScope)
	r := newCgroupResolver(tr.proc, cgroupMount{}, 16, time.Second, nil)
	// With nothing to check inodes against, only the caller's own file
	// counts; with no directory owners to check either, its path is
	// reported but not believed to name a container.
	info, src := r.resolve(12345, 100, 1)
	if info == nil || src != sourceProc || deref(info.pathText) != "/"+dockerScope {
		t.Fatalf("caller's own cgroup: %+v, %d", info, src)
	}
	if info.containerID != nil || info.runtime != nil || info.ownerUID != nil {
		t.Errorf("unchecked cgroup believed: container %q runtime %q owner %s", deref(info.containerID), deref(info.runtime), ownerText(info.ownerUID))
	}
	if info, _ := r.resolve(12345, 200, 100); info != nil {
		t.Errorf("parent's cgroup accepted unchecked: %+v", info)
	}
}

func TestCgroupSubtreeMount(t *testing.T) {
	tr := newCgroupTree(t, k8sLeaf)
	r := newCgroupResolver(tr.proc, cgroupMount{dir: filepath.Join(tr.mount, "kubepods"), root: "/kubepods"}, 16, time.Second, nil)
	info, src := r.resolve(tr.id(k8sLeaf), 200, 1)
	if info == nil || src != sourceIndex || info.path != "/"+k8sLeaf {
		t.Fatalf("got %+v, %d; want /%s by walk", info, src, k8sLeaf)
	}
	tr.process(100, "/"+k8sLeaf)
	if info, src := r.resolve(tr.id(k8sLeaf), 100, 1); info == nil || src != sourceProc {
		t.Errorf("through the subtree mount: %+v, %d", info, src)
	}
}

func TestCgroupIndexMissingMount(t *testing.T) {
	if _, _, err := newCgroupIndex(filepath.Join(t.TempDir(), "absent")).scan(); err == nil {
		t.Error("scanning a missing mount succeeded")
	}
}
