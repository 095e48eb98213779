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
	path     string
	pathText *string // path escaped, for records
	// ownerUID is the user a directory on the path was delegated to; nil
	// when all of it is the system's or that could not be checked.
	ownerUID    *int64
	containerID *string // nil outside containers, and where not trusted
	runtime     *string
	// workload is the unit or container workload; nil where nothing is
	// known (ownership unknown, no unit named).
	workload *workloadInfo
}

// owner is the ownership the info was made with, for a workload looked up
// again.
func (i *cgroupInfo) owner() cgroupOwner {
	o := cgroupOwner{checked: true}
	if i.ownerUID != nil {
		o.delegated, o.uid = true, uint32(*i.ownerUID)
	}
	return o
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
	sourceNone  cgroupSource = iota
	sourceProc               // /proc/<pid>/cgroup, inode checked
	sourceIndex              // found by inode in the cgroup2 index
)

// cgroupResolver maps cgroup ids to paths and containers. Positive entries
// never go stale: kernfs never reuses an id within a boot, and cgroups are
// not renamed in practice. They leave only by LRU eviction.
//
// Everything it does itself is bounded: a cache lookup, at most two small
// /proc reads and two stats, a map lookup in the index, and once an id is
// found, a stat per level of its path for its owner (cgroupTrust). An id none of these
// answers is deferred: the enricher hands it to the background resolver
// (cgroupBackground), whose next index scan may find it, and the record
// goes on without a container.
type cgroupResolver struct {
	procRoot string
	mount    cgroupMount
	trust    *cgroupTrust
	index    *cgroupIndex // nil without a cgroup2 mount
	cache    *lru[uint64, cgroupEntry]
	negTTL   time.Duration
	epoch    time.Time
	now      func() time.Time
}

func newCgroupResolver(procRoot string, mount cgroupMount, size int, negTTL time.Duration, files *workloadFiles) *cgroupResolver {
	trust := newCgroupTrust(mount, nil)
	trust.files = files
	r := &cgroupResolver{
		procRoot: procRoot,
		mount:    mount,
		trust:    trust,
		cache:    newLRU[uint64, cgroupEntry](size),
		negTTL:   negTTL,
		epoch:    time.Now(),
		now:      time.Now,
	}
	if mount.dir != "" {
		r.index = newCgroupIndex(mount.dir)
		// A failed first scan leaves the index empty; the background
		// resolver scans again when an id needs it.
		_, _, _ = r.index.scan()
	}
	return r
}

// cached answers from the cache alone; ok is false on a miss or an expired
// failure.
func (r *cgroupResolver) cached(id uint64) (info *cgroupInfo, ok bool) {
	if e, found := r.cache.get(id); found {
		if e.info != nil || r.monoNS() < e.expires {
			return e.info, true
		}
	}
	return nil, false
}

// store caches an answer; nil is a failure, retried after the negative TTL.
func (r *cgroupResolver) store(id uint64, info *cgroupInfo) {
	e := cgroupEntry{info: info}
	if info == nil {
		e.expires = r.monoNS() + int64(r.negTTL)
	}
	r.cache.put(id, e)
}

// lookup answers from the cache, resolving on a miss; nil means unknown.
// hit reports a cache answer (including a cached failure). deferred
// reports an id that only a newer index scan may still find: it is not
// cached, the caller hands it to the background resolver.
func (r *cgroupResolver) lookup(id uint64, pid, ppid uint32) (info *cgroupInfo, hit, deferred bool) {
	if info, ok := r.cached(id); ok {
		return info, true, false
	}
	info, _ = r.resolve(id, pid, ppid)
	if info == nil && id != 0 && r.index != nil {
		return nil, false, true
	}
	r.store(id, info)
	return info, false, false
}

func (r *cgroupResolver) monoNS() int64 { return int64(r.now().Sub(r.epoch)) }

// resolve finds the path of cgroup id without the cache. It asks the
// process first, then its parent (a short-lived caller often shares its
// parent's cgroup), accepting an answer only if that cgroup's inode is id:
// the pid may have been reused or the process moved since the event.
// Failing that, it looks the id up in the index as last scanned.
func (r *cgroupResolver) resolve(id uint64, pid, ppid uint32) (*cgroupInfo, cgroupSource) {
	if id == 0 {
		// No cgroup has id 0; the hook could not read one. Do not look for it.
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
				return r.trust.info(path), sourceProc
			}
			continue
		}
		dir, ok := r.mount.dirOf(path)
		if !ok {
			continue
		}
		if got, err := cgroupDirID(dir); err == nil && got == id {
			return r.trust.info(path), sourceProc
		}
	}
	return r.fromIndex(id)
}

// fromIndex answers from the index alone.
func (r *cgroupResolver) fromIndex(id uint64) (*cgroupInfo, cgroupSource) {
	if r.index == nil || id == 0 {
		return nil, sourceNone
	}
	rel, ok := r.index.lookup(id)
	if !ok {
		return nil, sourceNone
	}
	return r.trust.info(r.mount.pathOf(rel)), sourceIndex
}
