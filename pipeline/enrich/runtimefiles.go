package enrich

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"

	"github.com/bindwatch/bindwatch/internal/dacread"
)

// RuntimeRoots are where the container runtimes keep the state files a
// container's workload is read from. Each is a path as the agent sees it;
// empty takes the runtime's default under Config.RootFS. A runtime that is
// not installed costs nothing: its files are opened only for a container
// whose cgroup name says that runtime made it, and then once per cgroup.
type RuntimeRoots struct {
	// Docker is dockerd's --data-root (containers/<id>/config.v2.json).
	// Default /var/lib/docker.
	Docker string
	// Containerd is containerd's state directory, where each task's OCI
	// bundle is (io.containerd.runtime.v2.task/<namespace>/<id>/config.json).
	// Default /run/containerd.
	Containerd string
	// Storage and RunStorage are containers/storage's graph root and run
	// root, shared by Podman and CRI-O (<driver>-containers/containers.json,
	// <driver>-containers/<id>/userdata/config.json).
	// Default /var/lib/containers/storage and /run/containers/storage.
	Storage, RunStorage string
	// Passwd finds a rootless Podman user's home (its storage is
	// ~/.local/share/containers/storage), under Homes. Default /etc/passwd
	// and RootFS.
	Passwd, Homes string
	// CRISocket is containerd's socket, asked for CRI pods' labels and
	// their images' digests (only there: see criPodLabels). Empty asks
	// nothing.
	CRISocket string
}

func (r RuntimeRoots) withDefaults(rootFS string) RuntimeRoots {
	def := func(p *string, rel string) {
		if *p == "" {
			*p = filepath.Join(rootFS, rel)
		}
	}
	def(&r.Docker, "var/lib/docker")
	def(&r.Containerd, "run/containerd")
	def(&r.Storage, "var/lib/containers/storage")
	def(&r.RunStorage, "run/containers/storage")
	def(&r.Passwd, "etc/passwd")
	def(&r.Homes, ".")
	return r
}

// workloadFiles reads containers' workloads from their runtimes' files. It
// is immutable: the background cgroup resolver shares it.
type workloadFiles struct {
	roots RuntimeRoots
	// denied is the first state file the agent was not allowed to read:
	// runtimes keep their state root's alone, and the shipped unit runs the
	// agent unprivileged (see the enricher's warning).
	denied atomic.Pointer[string]
	// elevated reads beneath the roots what the agent may not (nil: no
	// elevation; it reads nothing unless dacread.Confine found the
	// capability held).
	elevated *dacread.Reader
}

// read reads a runtime state file, at most maxStateFile bytes, through
// open.
func (f *workloadFiles) read(path string) ([]byte, error) {
	fh, err := f.open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	return readLimited(fh)
}

// readDir lists a directory of a runtime's state, through open.
func (f *workloadFiles) readDir(path string) ([]fs.DirEntry, error) {
	fh, err := f.open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	return fh.ReadDir(-1)
}

// open opens a runtime's state file or directory: as the agent, or where
// that is refused, through the elevated reader (the unit's
// CAP_DAC_READ_SEARCH, effective for that one open beneath a runtime's
// root: internal/dacread). A permission error either way is noted for the
// enricher's warning.
func (f *workloadFiles) open(path string) (*os.File, error) {
	fh, err := os.Open(path)
	if errors.Is(err, fs.ErrPermission) && f.elevated != nil {
		var eerr error
		if fh, eerr = f.elevated.Open(path); eerr == nil {
			return fh, nil
		}
		if !errors.Is(eerr, dacread.ErrNotHeld) && !errors.Is(eerr, dacread.ErrOutside) {
			err = eerr // not there yet (ENOENT), or refused even so
		}
	}
	if errors.Is(err, fs.ErrPermission) {
		f.denied.CompareAndSwap(nil, &path)
	}
	return fh, err
}

// resolve reads what the runtime named by a container's cgroup wrote about
// container id. A container none of its files describe yet is pending.
func (f *workloadFiles) resolve(runtime, id string, o cgroupOwner) Workload {
	var w Workload
	var ok bool
	switch runtime {
	case RuntimeDocker:
		w, ok = f.docker(id)
	case RuntimeContainerd:
		// Also every bare id under kubepods, which the kubelet's cgroupfs
		// driver names the same whatever the runtime.
		if w, ok = f.containerd(id); !ok {
			if w, ok = f.crio(id); !ok {
				w, ok = f.docker(id)
			}
		}
	case RuntimeCRIO:
		w, ok = f.crio(id)
	case RuntimePodman:
		w, ok = f.podman(f.roots.Storage, id)
	case RuntimePodmanRootless:
		if home := passwdHome(f.roots.Passwd, o.uid); home != "" {
			w, ok = f.podman(filepath.Join(f.roots.Homes, home, ".local/share/containers/storage"), id)
		}
	}
	if !ok {
		w = Workload{Source: SourcePending}
	}
	w.Trusted = !o.delegated
	return w
}

// readLimited reads a state file, at most maxStateFile bytes.
func readLimited(fh *os.File) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(fh, maxStateFile+1))
	if err == nil && len(b) > maxStateFile {
		err = errors.New("larger than " + strconv.Itoa(maxStateFile) + " bytes")
	}
	return b, err
}
