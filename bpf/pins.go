package bpf

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// DefaultPinDir is where the agent pins its maps and links.
const DefaultPinDir = "/sys/fs/bpf/bindwatch"

// pinnedMaps are the maps that outlive an agent: the ring buffer and its
// unread records, the sequence counter (a restart must not reuse seq
// numbers within a boot), the drop counters, the configuration, and the
// kprobe variant's entry state.
var pinnedMaps = []string{"events", "seq_counter", "drops", "config_map", "lease", "filter_ports", "cgroup_set", "mntns_set", "pending", "listening", "udp_servers", "uid_budgets", "listener_budgets", "kind_drops"}

// pins is an agent's state under its pin directory.
//
// Restart without a blind spot works like this: the links of the running
// agent stay attached after it exits because they are pinned, so binds keep
// landing in the pinned ring buffer. The next agent reuses the pinned maps,
// loads its programs with a new generation number, attaches them (they stay
// silent: the configuration names the old generation), flips the
// configuration to its generation, and only then removes the old links. No
// bind is missed and none is reported twice.
type pins struct {
	dir string
	// reused are the pinned maps found and compatible with this program.
	reused map[string]*ebpf.Map
	// generation is this agent's; previous is the one reporting until the
	// flip (equal when nothing was pinned before).
	generation, previous uint32
	log                  *slog.Logger
	// lock is the pin directory's shared lock (orphan.go), held from
	// before the maps are opened until the agent exits; Load hands it to
	// the probe.
	lock *os.File
}

// openPins looks at dir's pinned maps. Maps from an incompatible bindwatch
// (another event layout or ring size) cannot be reused: then everything
// pinned there is removed and capture starts afresh, and the log says what
// was unread in the old ring.
func openPins(dir string, spec *ebpf.CollectionSpec, skip map[string]bool, log *slog.Logger) (*pins, error) {
	if err := ensureBPFFS(dir); err != nil {
		return nil, err
	}
	if err := securePinDir(dir); err != nil {
		return nil, err
	}
	lock, err := lockPinDir(dir, unix.LOCK_SH, pinLockWait)
	if errors.Is(err, errPinDirBusy) {
		return nil, &PinError{Err: fmt.Errorf("%s stayed locked for %v: a bindwatch unpin --if-orphaned holds it", dir, pinLockWait)}
	}
	if err != nil {
		return nil, &PinError{Err: err}
	}
	p := &pins{dir: dir, reused: map[string]*ebpf.Map{}, log: log, lock: lock}
	var incompatible []string
	for _, name := range pinnedMaps {
		if skip[name] {
			continue
		}
		m, err := ebpf.LoadPinnedMap(p.mapPath(name), nil)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			p.close()
			p.unlock()
			return nil, fmt.Errorf("opening pinned map %s: %w", p.mapPath(name), err)
		}
		if err := spec.Maps[name].Compatible(m); err != nil {
			incompatible = append(incompatible, fmt.Sprintf("%s: %v", name, err))
			m.Close()
			continue
		}
		p.reused[name] = m
	}
	if len(incompatible) > 0 {
		log.Warn("pinned BPF maps do not fit this bindwatch; starting capture afresh, unread events of the old ring are lost",
			"component", "bpf", "dir", dir, "why", strings.Join(incompatible, "; "))
		p.close()
		p.reused = map[string]*ebpf.Map{}
		// The directory stays: under the unit /sys is read-only but for
		// it, so a removed one could not be made again.
		if err := removePinEntries(dir); err != nil {
			p.unlock()
			return nil, &PinError{Err: err}
		}
	}
	if cfgMap, ok := p.reused["config_map"]; ok {
		var cfg bindwatchCaptureConfig
		if err := cfgMap.Lookup(uint32(0), &cfg); err != nil {
			p.close()
			p.unlock()
			return nil, fmt.Errorf("reading the pinned configuration: %w", err)
		}
		p.previous, p.generation = cfg.Generation, cfg.Generation+1
	} else {
		p.previous, p.generation = 1, 1
	}
	if err := spec.Variables["generation"].Set(p.generation); err != nil {
		p.close()
		p.unlock()
		return nil, fmt.Errorf("setting the program generation: %w", err)
	}
	return p, nil
}

func (p *pins) mapPath(name string) string { return filepath.Join(p.dir, "map_"+name) }

func (p *pins) linkPrefix(gen uint32) string { return fmt.Sprintf("link_%d_", gen) }

// adopt pins what the loaded probe created and its links. A link that cannot
// be pinned (perf-event attachments on kernels before 5.15) detaches when the
// agent exits: capture still works, restarts then have a blind spot.
func (p *pins) adopt(probe *Probe) error {
	for _, name := range pinnedMaps {
		m, ok := probe.coll.Maps[name]
		if _, reused := p.reused[name]; !ok || reused {
			continue
		}
		if err := m.Pin(p.mapPath(name)); err != nil {
			return &PinError{Err: fmt.Errorf("pinning map %s in %s: %w", name, p.dir, err)}
		}
	}
	for i, l := range probe.links {
		path := filepath.Join(p.dir, fmt.Sprintf("%s%d", p.linkPrefix(p.generation), i))
		if err := l.Pin(path); err != nil {
			p.log.Warn("cannot pin a BPF link: binds during an agent restart will be missed",
				"component", "bpf", "path", path, "error", err)
		}
	}
	return nil
}

// retireOld removes the pinned links of earlier generations, detaching them:
// called once this generation reports.
func (p *pins) retireOld() {
	entries, err := os.ReadDir(p.dir)
	if err != nil {
		p.log.Warn("listing pinned links", "component", "bpf", "error", err)
		return
	}
	mine := p.linkPrefix(p.generation)
	for _, e := range entries {
		if name := e.Name(); strings.HasPrefix(name, "link_") && !strings.HasPrefix(name, mine) {
			if err := os.Remove(filepath.Join(p.dir, name)); err != nil {
				p.log.Warn("removing an old pinned link", "component", "bpf", "path", name, "error", err)
			}
		}
	}
}

func (p *pins) close() {
	closeMaps(p.reused)
}

// unlock releases the pin directory's lock, unless the probe took it over.
func (p *pins) unlock() {
	if p.lock != nil {
		p.lock.Close()
		p.lock = nil
	}
}

// RemovePins detaches the links pinned under dir and frees its maps, with
// whatever the ring buffer still held: what `bindwatch unpin` does before an
// uninstall. A running agent keeps capturing until it exits.
func RemovePins(dir string) error { return removePins(dir) }

func removePins(dir string) error {
	if err := removePinEntries(dir); err != nil {
		return err
	}
	if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing %s: %w", dir, err)
	}
	return nil
}

// PinError is a failure to use the pin directory: it says nothing about
// the hook being loaded, so Load reports it as it is instead of trying the
// next hook.
type PinError struct{ Err error }

func (e *PinError) Error() string { return "pin directory: " + e.Err.Error() }
func (e *PinError) Unwrap() error { return e.Err }

// removePinEntries unpins the links, then the maps, under dir, leaving the
// directory itself.
func removePinEntries(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("listing %s: %w", dir, err)
	}
	// Links first, so nothing writes into maps about to go.
	for _, pass := range []string{"link_", "map_"} {
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), pass) {
				if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
					return fmt.Errorf("unpinning %s: %w", e.Name(), err)
				}
			}
		}
	}
	return nil
}

// ensureBPFFS makes sure dir's parent is on a bpffs, mounting one at
// /sys/fs/bpf if nothing is mounted there: minimal hosts and containers
// often come without.
func ensureBPFFS(dir string) error {
	parent := filepath.Dir(dir)
	var st unix.Statfs_t
	if err := unix.Statfs(parent, &st); err == nil && st.Type == unix.BPF_FS_MAGIC {
		return nil
	}
	if parent != "/sys/fs/bpf" {
		return fmt.Errorf("pin directory %s is not on a BPF filesystem (bpffs)", dir)
	}
	if err := unix.Mount("bpf", parent, "bpf", 0, "mode=0700"); err != nil {
		return fmt.Errorf("bpffs is not mounted at %s and mounting it failed: %w", parent, err)
	}
	return nil
}
