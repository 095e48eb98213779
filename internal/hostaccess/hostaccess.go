// Package hostaccess lets the agent's group reach the few root-only files
// the agent needs, so that it runs without CAP_DAC_READ_SEARCH.
//
// tracefs and bpffs are mounted mode 0700 root. The tracepoint hook must
// read events/syscalls/sys_exit_bind/id in tracefs to attach, and the agent
// pins under /sys/fs/bpf/bindwatch. It used to be granted
// CAP_DAC_READ_SEARCH for both, which bypasses read permission on every
// file: a compromised agent could read /etc/shadow. Instead,
// bindwatch.service runs `bindwatch grant-access --group bindwatch` as root
// before the agent starts (ExecStartPre=+), which gives the group search
// permission on the directories down to each trace event and read
// permission on its id file, and search permission on bpffs's root, and
// changes nothing others may already do. What the group can then reach is
// a handful of ids (not the trace buffers, not the other events) and the
// bpffs entries whose own modes let it in (pins are 0600 by default, the
// agent's own directory is its own 0700).
package hostaccess

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/bindwatch/bindwatch/bpf"
)

// Events are the trace events whose ids the agent reads: the tracepoint
// hook's (bpf.TraceEvents). kprobes go through the kprobe PMU in sysfs;
// fexit and tp_btf need no tracefs.
var Events = bpf.TraceEvents()

// Roots are where tracefs is found, in the order cilium/ebpf looks.
var Roots = []string{"/sys/kernel/tracing", "/sys/kernel/debug/tracing"}

// Change is one permission change made.
type Change struct {
	Path           string
	Mode, PrevMode os.FileMode // permission bits after and before
	Gid, PrevGid   int
}

// GrantTracefs gives group gid search permission on root and the directories
// under it down to each event of events, and read permission on each
// event's id file, where others lack that permission already. It returns
// what it changed. An event the kernel does not have is skipped.
func GrantTracefs(root string, gid int, events []string) ([]Change, error) {
	var changes []Change
	done := map[string]bool{}
	grant := func(path string, bit os.FileMode) error {
		if done[path] {
			return nil
		}
		done[path] = true
		c, err := grantBit(path, gid, bit)
		if c != nil {
			changes = append(changes, *c)
		}
		return err
	}
	if err := grant(root, 0o010); err != nil {
		return changes, err
	}
	for _, ev := range events {
		id := filepath.Join(root, "events", ev, "id")
		if _, err := os.Stat(id); errors.Is(err, os.ErrNotExist) {
			continue
		}
		dir := root
		for _, part := range strings.Split(filepath.Clean("events/"+ev), "/") {
			dir = filepath.Join(dir, part)
			if err := grant(dir, 0o010); err != nil {
				return changes, err
			}
		}
		if err := grant(id, 0o040); err != nil {
			return changes, err
		}
	}
	return changes, nil
}

// GrantSearch gives group gid search permission on dir (bpffs's root),
// unless others have it already.
func GrantSearch(dir string, gid int) ([]Change, error) {
	c, err := grantBit(dir, gid, 0o010)
	if c == nil {
		return nil, err
	}
	return []Change{*c}, err
}

// grantBit gives group gid the group permission bit on path, where others
// lack it and the group does not have it already: the file is given to
// the group, its mode otherwise kept.
func grantBit(path string, gid int, bit os.FileMode) (*Change, error) {
	var st syscall.Stat_t
	if err := syscall.Lstat(path, &st); err != nil {
		return nil, &os.PathError{Op: "lstat", Path: path, Err: err}
	}
	mode := os.FileMode(st.Mode & 0o7777)
	other := bit >> 3 // the same permission for others
	if mode&other != 0 || (int(st.Gid) == gid && mode&bit != 0) {
		return nil, nil
	}
	if err := os.Lchown(path, -1, gid); err != nil {
		return nil, err
	}
	// Raw bits: os.Chmod would drop a sticky bit given as 01000.
	if err := unix.Chmod(path, uint32(mode|bit)); err != nil {
		return nil, err
	}
	return &Change{Path: path, Mode: mode | bit, PrevMode: mode, Gid: gid, PrevGid: int(st.Gid)}, nil
}

// Paths are the files GrantTracefs may change under root for events: root, the
// directories down to each event and its id file.
func Paths(root string, events []string) []string {
	paths := []string{root}
	seen := map[string]bool{root: true}
	for _, ev := range events {
		dir := root
		for _, part := range strings.Split(filepath.Clean("events/"+ev), "/") {
			dir = filepath.Join(dir, part)
			if !seen[dir] {
				seen[dir] = true
				paths = append(paths, dir)
			}
		}
		paths = append(paths, filepath.Join(dir, "id"))
	}
	return paths
}

// FindRoot is the first of Roots where tracefs shows events.
func FindRoot() (string, error) {
	for _, r := range Roots {
		if _, err := os.Stat(filepath.Join(r, "events")); err == nil {
			return r, nil
		}
	}
	return "", fmt.Errorf("tracefs is not mounted at %s", Roots[0])
}
