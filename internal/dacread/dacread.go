// Package dacread lets an agent that runs as an unprivileged user read the
// container runtimes' state files, which are root's alone (Docker's
// config.v2.json is 0600, containerd's task bundles and containers/storage
// 0700), and nothing else with the same privilege.
//
// The unit grants CAP_DAC_READ_SEARCH. Confine takes it out of every
// thread's effective set at start and keeps it permitted; a Reader raises
// it on one locked OS thread only for the open of a path beneath one of its
// roots (from the root's fd, following no symlink, no ".." and no other
// mount, so that no name in a runtime's state can lead the open
// elsewhere), then lowers it. The rest of the agent (configuration, /proc, cgroupfs, the
// spool) never runs with it, so no bug there reads a file on its strength.
//
// It is no barrier against code running in the agent: a process may raise
// a permitted capability at will. Against that, the unit's other walls
// stand (ProtectSystem, InaccessiblePaths=/etc/shadow and the like,
// ProtectHome, open_by_handle_at outside its system call filter).
package dacread

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// capability is the one this package raises and lowers.
const capability = unix.CAP_DAC_READ_SEARCH

// held is whether Confine found the capability permitted (and so left it
// there to raise); confined is whether it could take it out of every
// thread's effective set.
var held, confined atomic.Bool

// ErrNotHeld: the process does not hold CAP_DAC_READ_SEARCH (a unit without
// it, no-workload.conf), or Confine was not called.
var ErrNotHeld = errors.New("CAP_DAC_READ_SEARCH not held")

// ErrOutside: the path is beneath none of the Reader's roots.
var ErrOutside = errors.New("not beneath a runtime state root")

// ErrCgo: a binary built with cgo cannot change every thread's
// capabilities (syscall.AllThreadsSyscall refuses), so the capability stays
// effective everywhere. Release builds are CGO_ENABLED=0.
var ErrCgo = errors.New("built with cgo: CAP_DAC_READ_SEARCH cannot be confined to one thread, it stays effective on all")

// Confine takes CAP_DAC_READ_SEARCH out of the effective and ambient sets
// of every thread of the process, keeping it permitted for Reader, and
// reports whether it is held. Call it once, at start, before anything
// reads a file. Not held is no error: the agent then runs without it.
func Confine() (bool, error) {
	hdr, data, err := capGet()
	if err != nil {
		return false, err
	}
	if data[0].Permitted&(1<<capability) == 0 {
		return false, nil
	}
	held.Store(true)
	data[0].Effective &^= 1 << capability
	_, _, e := syscall.AllThreadsSyscall(unix.SYS_CAPSET, uintptr(unsafe.Pointer(&hdr)), uintptr(unsafe.Pointer(&data[0])), 0)
	runtime.KeepAlive(&hdr)
	runtime.KeepAlive(&data)
	if e != 0 {
		if e == syscall.ENOTSUP {
			return true, ErrCgo
		}
		return true, fmt.Errorf("capset on every thread: %w", e)
	}
	// An exec would otherwise give it back (the agent runs nothing, and
	// NoNewPrivileges holds, but nothing needs it there).
	if _, _, e := syscall.AllThreadsSyscall6(unix.SYS_PRCTL, unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_LOWER, capability, 0, 0, 0); e != 0 {
		return true, fmt.Errorf("lowering the ambient capability: %w", e)
	}
	confined.Store(true)
	return true, nil
}

// Reader opens files beneath its roots with CAP_DAC_READ_SEARCH raised.
type Reader struct {
	roots []string
}

// NewReader is a Reader for paths beneath roots (clean absolute paths; an
// empty or relative one is ignored).
func NewReader(roots ...string) *Reader {
	r := &Reader{}
	for _, root := range roots {
		if root != "" && filepath.IsAbs(root) {
			r.roots = append(r.roots, filepath.Clean(root))
		}
	}
	return r
}

// Roots are the directories r reads beneath.
func (r *Reader) Roots() []string { return r.roots }

// Open opens path, a file or a directory beneath one of r's roots, for
// reading, with CAP_DAC_READ_SEARCH effective for that open alone. The
// root is opened as named (it is the configuration's); below it, no
// symlink, no "..", no other mount is followed.
func (r *Reader) Open(path string) (*os.File, error) {
	if r == nil || !held.Load() {
		return nil, &os.PathError{Op: "open", Path: path, Err: ErrNotHeld}
	}
	root, rel, ok := r.split(path)
	if !ok {
		return nil, &os.PathError{Op: "open", Path: path, Err: ErrOutside}
	}
	type result struct {
		fd  int
		err error
	}
	done := make(chan result, 1)
	// A goroutine of its own: if the capability could not be lowered
	// again, it exits still locked to its thread, and the runtime ends the
	// thread instead of handing it to other goroutines.
	go func() {
		runtime.LockOSThread()
		if !confined.Load() {
			// Effective everywhere already (ErrCgo): the same open, beneath.
			fd, err := openBeneath(root, rel)
			runtime.UnlockOSThread()
			done <- result{fd, err}
			return
		}
		if err := setEffective(true); err != nil {
			runtime.UnlockOSThread()
			done <- result{-1, fmt.Errorf("raising CAP_DAC_READ_SEARCH: %w", err)}
			return
		}
		fd, err := openBeneath(root, rel)
		if lowerErr := setEffective(false); lowerErr != nil {
			if fd >= 0 {
				unix.Close(fd)
			}
			done <- result{-1, fmt.Errorf("lowering CAP_DAC_READ_SEARCH: %w", lowerErr)}
			return // still locked: the thread goes with the goroutine
		}
		runtime.UnlockOSThread()
		done <- result{fd, err}
	}()
	res := <-done
	if res.err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: res.err}
	}
	return os.NewFile(uintptr(res.fd), path), nil
}

// split finds the root path is beneath; rel is the rest, "." for the
// root itself.
func (r *Reader) split(path string) (root, rel string, ok bool) {
	if !filepath.IsAbs(path) {
		return "", "", false
	}
	path = filepath.Clean(path)
	for _, root := range r.roots {
		if path == root {
			return root, ".", true
		}
		if rest, found := strings.CutPrefix(path, root+"/"); found && filepath.IsLocal(rest) {
			return root, rest, true
		}
		if root == "/" && filepath.IsLocal(path[1:]) {
			return root, path[1:], true
		}
	}
	return "", "", false
}

// noOpenat2 makes openBeneath walk with openat: set once openat2 was
// refused (a system call filter refuses it every time, so it is not tried
// again), or by tests.
var noOpenat2 atomic.Bool

// openBeneath opens rel beneath root: no symlink, no "..", no other
// mount. openat2 says so in one call; under systemd's RestrictSUIDSGID=
// (the unit sets it) openat2 fails with ENOSYS, since a filter cannot see
// its flags, so then the same is done one component at a time with openat
// and O_NOFOLLOW, checking each is on the root's device.
func openBeneath(root, rel string) (int, error) {
	dir, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	defer unix.Close(dir)
	const flags = unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NOCTTY | unix.O_NONBLOCK
	if rel == "." {
		return unix.Openat(dir, ".", flags|unix.O_DIRECTORY, 0)
	}
	if !noOpenat2.Load() {
		fd, err := unix.Openat2(dir, rel, &unix.OpenHow{
			Flags: flags,
			Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS |
				unix.RESOLVE_NO_XDEV,
		})
		if err != unix.ENOSYS && err != unix.EPERM {
			return fd, err
		}
		noOpenat2.Store(true)
	}
	var st unix.Stat_t
	if err := unix.Fstat(dir, &st); err != nil {
		return -1, err
	}
	dev := st.Dev
	parts := strings.Split(rel, "/")
	at := dir
	for i, part := range parts {
		if part == "" || part == "." || part == ".." {
			if at != dir {
				unix.Close(at)
			}
			return -1, unix.EXDEV
		}
		f := unix.O_PATH | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC
		if i == len(parts)-1 {
			f = flags | unix.O_NOFOLLOW
		}
		fd, err := unix.Openat(at, part, f, 0)
		if at != dir {
			unix.Close(at)
		}
		if err != nil {
			return -1, err
		}
		if err := unix.Fstat(fd, &st); err != nil || st.Dev != dev {
			unix.Close(fd)
			if err == nil {
				err = unix.EXDEV
			}
			return -1, err
		}
		at = fd
	}
	return at, nil
}

// setEffective raises or lowers the capability in the calling thread's
// effective set (capset with pid 0 changes this thread alone).
func setEffective(on bool) error {
	hdr, data, err := capGet()
	if err != nil {
		return err
	}
	if on {
		data[0].Effective |= 1 << capability
	} else {
		data[0].Effective &^= 1 << capability
	}
	return unix.Capset(&hdr, &data[0])
}

func capGet() (unix.CapUserHeader, [2]unix.CapUserData, error) {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	err := unix.Capget(&hdr, &data[0])
	return hdr, data, err
}
