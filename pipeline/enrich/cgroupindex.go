package enrich

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// cgroupIndex maps cgroup ids to directories under the cgroup2 mount: the
// answer for a process that exited before its event was enriched.
//
// On 64-bit kernels a kernfs inode number is the node's full 64-bit id, and
// that id is what bpf_get_current_cgroup_id returns, so the inode number a
// directory listing gives (d_ino) is the cgroup id: a scan reads each
// directory once with getdents and stats nothing. Looking an id up once the
// index is built is a map access, where the enricher used to walk the whole
// tree, stat by stat, for every id it could not resolve: with 20 000 cgroups
// on the host that was over a second per id, on the one enrich goroutine.
//
// The map is replaced whole by each scan and read without a lock. Scans
// happen at start and then only in the background resolver, coalesced and
// spaced (cgroupBackground), never on the event path. kernfs does not
// change a directory's mtime when a child is made, so a scan cannot skip
// unchanged subtrees; it reads every directory, which is why scans are few.
type cgroupIndex struct {
	dir string
	// byID is the last scan's map from id to the path relative to dir
	// ("." for dir itself).
	byID atomic.Pointer[map[uint64]string]
	// scanned is when the last scan started: ids made before it are in it,
	// unless they were removed first.
	scanned atomic.Int64
	// maxDirs bounds one scan: a host with more cgroups than this is
	// indexed in part.
	maxDirs int
	// buf is the getdents buffer, reused: only one scan runs at a time.
	buf []byte
}

// maxIndexedCgroups is far above any real host (systemd and Kubernetes
// nodes have hundreds to a few thousand) and bounds a scan to a few
// seconds and tens of MiB even when a user makes cgroups by the hundred
// thousand.
const maxIndexedCgroups = 1 << 20

func newCgroupIndex(dir string) *cgroupIndex {
	x := &cgroupIndex{dir: dir, maxDirs: maxIndexedCgroups, buf: make([]byte, 64<<10)}
	empty := map[uint64]string{}
	x.byID.Store(&empty)
	return x
}

// lookup returns the directory of id, relative to the mount point.
func (x *cgroupIndex) lookup(id uint64) (string, bool) {
	rel, ok := (*x.byID.Load())[id]
	return rel, ok
}

// len is how many cgroups the last scan found.
func (x *cgroupIndex) len() int { return len(*x.byID.Load()) }

// scan rebuilds the index from the directory tree. Not safe to call
// concurrently with itself.
func (x *cgroupIndex) scan() (found int, took time.Duration, err error) {
	start := time.Now()
	var st syscall.Stat_t
	if err := syscall.Stat(x.dir, &st); err != nil {
		return 0, 0, &os.PathError{Op: "stat", Path: x.dir, Err: err}
	}
	m := make(map[uint64]string, max(x.len(), 64))
	m[st.Ino] = "."
	stack := []string{"."}
	for len(stack) > 0 && len(m) < x.maxDirs {
		rel := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		path := x.dir
		if rel != "." {
			path += "/" + rel
		}
		err := x.readDirs(path, func(name string, ino uint64) {
			child := name
			if rel != "." {
				child = rel + "/" + name
			}
			if len(m) < x.maxDirs {
				m[ino] = child
				stack = append(stack, child)
			}
		})
		if err != nil && rel == "." {
			return 0, 0, err
		}
		// Cgroups come and go during a scan; a vanished one is not an error.
	}
	x.byID.Store(&m)
	x.scanned.Store(start.UnixNano())
	if len(m) >= x.maxDirs {
		return len(m), time.Since(start), fmt.Errorf("more than %d cgroups under %s: indexed in part", x.maxDirs, x.dir)
	}
	return len(m), time.Since(start), nil
}

// readDirs calls fn for each subdirectory of path with its inode number.
func (x *cgroupIndex) readDirs(path string, fn func(name string, ino uint64)) error {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	for {
		n, err := unix.Getdents(fd, x.buf)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return &os.PathError{Op: "getdents", Path: path, Err: err}
		}
		if n <= 0 {
			return nil
		}
		parseDirents(x.buf[:n], fn)
	}
}

// parseDirents walks a getdents64 buffer of struct linux_dirent64 records
// (d_ino u64, d_off s64, d_reclen u16, d_type u8, d_name NUL-terminated)
// and calls fn for each directory but "." and "..".
func parseDirents(b []byte, fn func(name string, ino uint64)) {
	const nameOff = 19
	for len(b) >= nameOff {
		reclen := int(binary.NativeEndian.Uint16(b[16:18]))
		if reclen < nameOff || reclen > len(b) {
			return
		}
		rec := b[:reclen]
		b = b[reclen:]
		if rec[18] != unix.DT_DIR {
			continue
		}
		name := rec[nameOff:]
		for i, c := range name {
			if c == 0 {
				name = name[:i]
				break
			}
		}
		if s := string(name); s != "." && s != ".." {
			fn(s, binary.NativeEndian.Uint64(rec[0:8]))
		}
	}
}

// cgroupDirID is the cgroup id of a cgroup directory: its inode number.
func cgroupDirID(path string) (uint64, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return 0, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	return st.Ino, nil
}
