package enrich

import (
	"os"
	"strconv"
	"time"
)

// exeResolver remembers each process's executable path for a short while:
// a process binds and listens in bursts, and the readlink is a syscall.
// A pid reused within ttl shows its predecessor's path, a window kept short
// for that reason. Bounded: emptied in one go when full.
type exeResolver struct {
	procRoot string
	ttl      time.Duration
	max      int
	m        map[uint32]exeEntry
}

type exeEntry struct {
	path *string // nil: unreadable
	at   time.Time
}

// newExeResolver's map grows with use up to max, like internTable's.
func newExeResolver(procRoot string, ttl time.Duration, max int) *exeResolver {
	return &exeResolver{procRoot: procRoot, ttl: ttl, max: max, m: map[uint32]exeEntry{}}
}

// lookup returns pid's executable path, nil when it exited or cannot be read.
func (r *exeResolver) lookup(pid uint32, now time.Time) *string {
	if e, ok := r.m[pid]; ok && now.Sub(e.at) < r.ttl {
		return e.path
	}
	if len(r.m) >= r.max {
		clear(r.m)
	}
	var path *string
	if p, err := os.Readlink(r.procRoot + "/" + strconv.FormatUint(uint64(pid), 10) + "/exe"); err == nil {
		path = &p
	}
	r.m[pid] = exeEntry{path: path, at: now}
	return path
}
