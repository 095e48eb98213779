package enrich

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// errCgroupNotFound means no directory under the mount has the wanted id:
// the cgroup was removed after the event.
var errCgroupNotFound = errors.New("no cgroup with that id")

// findCgroupDir walks the cgroup2 mount at dir for the directory whose inode
// number is id, and returns its path relative to dir ("." for dir itself).
//
// On 64-bit kernels a kernfs inode number is the node's full 64-bit id, and
// that id is what bpf_get_current_cgroup_id returns, so the match is exact.
// This is the fallback for a process that exited before its event was
// enriched; it costs a stat per cgroup on the host, hence the caching.
func findCgroupDir(dir string, id uint64) (string, error) {
	found := ""
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == dir {
				return err
			}
			// Cgroups come and go during the walk; a vanished one is not an error.
			return nil
		}
		if !d.IsDir() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		if st, ok := info.Sys().(*syscall.Stat_t); ok && st.Ino == id {
			found = p
			return fs.SkipAll
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("walking %s: %w", dir, err)
	}
	if found == "" {
		return "", fmt.Errorf("%w %d under %s", errCgroupNotFound, id, dir)
	}
	return filepath.Rel(dir, found)
}

// cgroupDirID is the cgroup id of a cgroup directory: its inode number.
func cgroupDirID(path string) (uint64, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return 0, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	return st.Ino, nil
}
