package enrich

import (
	"os"
	"strconv"
	"time"
)

// cgroupInfo is what a cgroup id resolves to. It is immutable once cached:
// records point at its strings, and a record may still be in flight when
// the cache evicts the entry.
type cgroupInfo struct {
	path        string
	containerID *string // nil outside containers
	runtime     *string
}

func newCgroupInfo(path string) *cgroupInfo {
	info := &cgroupInfo{path: path}
	if id, runtime, ok := ParseContainer(path); ok {
		info.containerID, info.runtime = &id, &runtime
	}
	return info
}

// cgroupEntry is a cache slot; a nil info is a failed resolution, retried
// after expires (monotonic ns since the resolver's epoch).
type cgroupEntry struct {
	info    *cgroupInfo
	expires int64
}

// How a cgroup id was resolved; tests check that each path really ran.
type cgroupSource int

const (
	sourceNone cgroupSource = iota
	sourceProc              // /proc/<pid>/cgroup, inode checked
	sourceWalk              // found by inode under the cgroup2 mount
)

// cgroupResolver maps cgroup ids to paths and containers. Positive entries
// never go stale: kernfs never reuses an id within a boot, and cgroups are
// not renamed in practice. They leave only by LRU eviction.
type cgroupResolver struct {
	procRoot string
	mount    cgroupMount
	cache    *lru[uint64, cgroupEntry]
	negTTL   time.Duration
	epoch    time.Time
	now      func() time.Time
}

func newCgroupResolver(procRoot string, mount cgroupMount, size int, negTTL time.Duration) *cgroupResolver {
	return &cgroupResolver{
		procRoot: procRoot,
		mount:    mount,
		cache:    newLRU[uint64, cgroupEntry](size),
		negTTL:   negTTL,
		epoch:    time.Now(),
		now:      time.Now,
	}
}

// lookup answers from the cache, resolving on a miss; nil means unknown.
// hit reports a cache answer (including a cached failure).
func (r *cgroupResolver) lookup(id uint64, pid, ppid uint32) (info *cgroupInfo, hit bool) {
	if e, ok := r.cache.get(id); ok {
		if e.info != nil || r.monoNS() < e.expires {
			return e.info, true
		}
	}
	info, _ = r.resolve(id, pid, ppid)
	e := cgroupEntry{info: info}
	if info == nil {
		e.expires = r.monoNS() + int64(r.negTTL)
	}
	r.cache.put(id, e)
	return info, false
}

func (r *cgroupResolver) monoNS() int64 { return int64(r.now().Sub(r.epoch)) }

// resolve finds the path of cgroup id without the cache. It asks the
// process first, then its parent (a short-lived caller often shares its
// parent's cgroup), accepting an answer only if that cgroup's inode is id:
// the pid may have been reused or the process moved since the event.
// Failing that, it searches the hierarchy by inode.
func (r *cgroupResolver) resolve(id uint64, pid, ppid uint32) (*cgroupInfo, cgroupSource) {
	if id == 0 {
		// No cgroup has id 0; the hook could not read one. Do not walk for it.
		return nil, sourceNone
	}
	for i, p := range [2]uint32{pid, ppid} {
		if p == 0 || (i == 1 && p == pid) {
			continue
		}
		b, err := os.ReadFile(r.procRoot + "/" + strconv.FormatUint(uint64(p), 10) + "/cgroup")
		if err != nil {
			continue
		}
		path, ok := parseProcCgroup(string(b))
		if !ok {
			continue
		}
		if r.mount.dir == "" {
			// Nothing to check against; trust only the caller itself.
			if i == 0 {
				return newCgroupInfo(path), sourceProc
			}
			continue
		}
		dir, ok := r.mount.dirOf(path)
		if !ok {
			continue
		}
		if got, err := cgroupDirID(dir); err == nil && got == id {
			return newCgroupInfo(path), sourceProc
		}
	}
	if r.mount.dir == "" {
		return nil, sourceNone
	}
	rel, err := findCgroupDir(r.mount.dir, id)
	if err != nil {
		return nil, sourceNone
	}
	return newCgroupInfo(r.mount.pathOf(rel)), sourceWalk
}
