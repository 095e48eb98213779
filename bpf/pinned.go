package bpf

import (
	"errors"
	"fmt"
	"os"

	"github.com/cilium/ebpf"
)

// pinnedSets opens the pinned cgroup and mount-namespace maps the filter
// names and shapes spec's placeholders after them, so the loader can use the
// pinned maps in their place. The caller closes the returned maps.
func pinnedSets(spec *ebpf.CollectionSpec, f Filter) (map[string]*ebpf.Map, error) {
	out := map[string]*ebpf.Map{}
	for _, set := range []struct{ name, path, what string }{
		{"cgroup_set", f.CgroupMap, "cgroup map"},
		{"mntns_set", f.MntNSMap, "mount namespace map"},
	} {
		if set.path == "" {
			continue
		}
		m, err := openPinnedSet(set.path, set.what)
		if err != nil {
			closeMaps(out)
			return nil, err
		}
		info, err := m.Info()
		if err != nil {
			m.Close()
			closeMaps(out)
			return nil, fmt.Errorf("%s %s: reading map info: %w", set.what, set.path, err)
		}
		ms := spec.Maps[set.name]
		ms.ValueSize, ms.MaxEntries, ms.Flags = info.ValueSize, info.MaxEntries, info.Flags
		out[set.name] = m
	}
	return out, nil
}

// openPinnedSet opens a pinned hash map keyed by a 64-bit id, as bcc's
// --cgroupmap and --mntnsmap expect.
func openPinnedSet(path, what string) (*ebpf.Map, error) {
	m, err := ebpf.LoadPinnedMap(path, nil)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s %s does not exist: pin a BPF hash map keyed by a 64-bit id there first", what, path)
	}
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", what, path, err)
	}
	if m.Type() != ebpf.Hash || m.KeySize() != 8 {
		m.Close()
		return nil, fmt.Errorf("%s %s is a %s map with %d-byte keys: want a hash map with 8-byte keys",
			what, path, m.Type(), m.KeySize())
	}
	return m, nil
}

func closeMaps(maps map[string]*ebpf.Map) {
	for _, m := range maps {
		m.Close()
	}
}
