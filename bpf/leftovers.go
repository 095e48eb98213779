package bpf

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/cilium/ebpf"
)

// Leftovers lists what bindwatch left in the kernel: pin directories named
// bindwatch* on the bpffs at bpffs, and loaded programs of this object (by
// the name the kernel keeps, its first 15 bytes). On a machine where no
// agent or snoop runs it must be empty: pinned programs outlive the process
// that pinned them and go on capturing into a ring nobody reads.
func Leftovers(bpffs string) ([]string, error) {
	var found []string
	entries, err := os.ReadDir(bpffs)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "bindwatch") {
			found = append(found, "pinned: "+filepath.Join(bpffs, e.Name()))
		}
	}
	spec, err := loadBindwatch()
	if err != nil {
		return nil, err
	}
	var names []string
	for name := range spec.Programs {
		names = append(names, name[:min(len(name), 15)])
	}
	var id ebpf.ProgramID
	for {
		next, err := ebpf.ProgramGetNextID(id)
		if errors.Is(err, os.ErrNotExist) {
			break
		}
		if err != nil {
			return found, fmt.Errorf("listing BPF programs: %w", err)
		}
		id = next
		p, err := ebpf.NewProgramFromID(id)
		if err != nil {
			continue // gone meanwhile
		}
		info, err := p.Info()
		p.Close()
		// The kernel keeps 15 bytes of a name; BTF may give it whole.
		if err == nil && slices.Contains(names, info.Name[:min(len(info.Name), 15)]) {
			found = append(found, fmt.Sprintf("program %d: %s", id, info.Name))
		}
	}
	return found, nil
}
