package enrich

import (
	"os"
	"strings"
	"syscall"

	"github.com/bindwatch/bindwatch/internal/safetext"
)

// A cgroup's name proves nothing by itself: whoever may make cgroups in a
// subtree may name them after a runtime's containers. systemd delegates a
// subtree by making its directory (and the files that manage it) the user's:
// user@UID.service to UID, a unit with Delegate=yes and User= to that user.
// Below such a directory the user makes any cgroup it likes, with a
// container id copied from a real container, and moves its processes there.
// So a runtime name is believed only where every directory from the root of
// the hierarchy down to the container's is the hierarchy owner's (root's):
// runtimes run as root and make their cgroups there.

// cgroupOwner is who controls a cgroup.
type cgroupOwner struct {
	// checked is false when ownership could not be read (no cgroup2 mount,
	// a directory removed or unreadable): nothing the path names is believed.
	checked bool
	// delegated: a directory on the path is owned by uid, not by the owner
	// of the hierarchy's root.
	delegated bool
	uid       uint32
	// trusted is the part of the cgroup path above the first delegated
	// directory: names there were made by root.
	trusted string
}

// cgroupTrust reads directory owners under the cgroup2 mount. It is
// immutable once made: the background resolver shares it.
type cgroupTrust struct {
	mount cgroupMount
	// ownerOf is the owner uid of a directory; a stat, or a fixture's.
	ownerOf func(dir string) (uint32, error)
	// files reads containers' workloads; nil reads none.
	files *workloadFiles
	// systemUID owns the mount's root directory: root on a host. Ownership
	// is compared with it, not with 0, so that a hierarchy seen through a
	// user namespace or a test's tree has a system owner too.
	systemUID uint32
	known     bool // systemUID was read
}

func newCgroupTrust(mount cgroupMount, ownerOf func(string) (uint32, error)) *cgroupTrust {
	if ownerOf == nil {
		ownerOf = statOwner
	}
	c := &cgroupTrust{mount: mount, ownerOf: ownerOf}
	if mount.dir != "" {
		if uid, err := ownerOf(mount.dir); err == nil {
			c.systemUID, c.known = uid, true
		}
	}
	return c
}

// statOwner is the owner of dir, without following a symlink.
func statOwner(dir string) (uint32, error) {
	var st syscall.Stat_t
	if err := syscall.Lstat(dir, &st); err != nil {
		return 0, &os.PathError{Op: "lstat", Path: dir, Err: err}
	}
	return st.Uid, nil
}

// owner finds who controls the cgroup at path (as /proc/<pid>/cgroup prints
// it): it stats each directory from the mount down and stops at the first
// that is not the system owner's. That is one stat per level of a root-owned
// path (a handful), fewer for a delegated one, and it never has to search a
// user's subtree, which may be closed to the agent. It runs on a cache miss
// only: the answer is cached with the rest of the cgroup's info.
//
// Ancestors above the mount's root (a cgroup namespace, a subtree mount) are
// not visible and are taken to be the system's.
func (c *cgroupTrust) owner(path string) cgroupOwner {
	if !c.known {
		return cgroupOwner{}
	}
	if _, ok := c.mount.dirOf(path); !ok {
		return cgroupOwner{}
	}
	start := 0
	if c.mount.root != "/" {
		start = len(c.mount.root)
	}
	dir := c.mount.dir
	for i := start; i < len(path); {
		end := len(path)
		if j := strings.IndexByte(path[i+1:], '/'); j >= 0 {
			end = i + 1 + j
		}
		if comp := path[i+1 : end]; comp != "" {
			dir += "/" + comp
			uid, err := c.ownerOf(dir)
			if err != nil {
				return cgroupOwner{}
			}
			if uid != c.systemUID {
				return cgroupOwner{checked: true, delegated: true, uid: uid, trusted: path[:i]}
			}
		}
		i = end
	}
	return cgroupOwner{checked: true, trusted: path}
}

// info makes the cached answer for the cgroup at path.
func (c *cgroupTrust) info(path string) *cgroupInfo {
	return newCgroupInfo(path, c.owner(path), c.files)
}

func newCgroupInfo(path string, o cgroupOwner, files *workloadFiles) *cgroupInfo {
	text := safetext.Escape(path)
	info := &cgroupInfo{path: path, pathText: &text}
	if o.delegated {
		uid := int64(o.uid)
		info.ownerUID = &uid
	}
	if id, runtime, ok := attributeContainer(path, o); ok {
		info.containerID, info.runtime = &id, &runtime
		if files != nil {
			info.workload = newWorkloadInfo(files.resolve(runtime, id, o))
		}
	} else if unit := unitOf(path, o); unit != "" {
		// unitOf names no directory a user made: trusted even in a
		// delegated subtree.
		info.workload = newWorkloadInfo(Workload{Unit: unit, Trusted: true})
	}
	return info
}
