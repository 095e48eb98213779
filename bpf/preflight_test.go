package bpf

import (
	"errors"
	"fmt"
	"testing"

	"github.com/cilium/ebpf"
)

func TestPreflight(t *testing.T) {
	const root = 1<<capSysAdmin | 1<<capBPF | 1<<capPerfmon
	ok := func() error { return nil }
	tests := []struct {
		name string
		h    host
		want string
	}{
		{"root on a capable kernel", host{func() (uint64, error) { return root, nil }, "/", ok}, ""},
		{"CAP_BPF and CAP_PERFMON suffice", host{func() (uint64, error) { return 1<<capBPF | 1<<capPerfmon, nil }, "/", ok}, ""},
		{"not root", host{func() (uint64, error) { return 1 << capBPF, nil }, "/", ok},
			"must run as root, or with CAP_BPF and CAP_PERFMON, to load BPF programs"},
		{"no BTF", host{func() (uint64, error) { return root, nil }, "/nonexistent/vmlinux", ok},
			"this kernel has no BTF at /nonexistent/vmlinux (built without CONFIG_DEBUG_INFO_BTF); bindwatch needs it to read kernel structs"},
		{"no ring buffer", host{func() (uint64, error) { return root, nil }, "/", func() error {
			return fmt.Errorf("map type RingBuf: %w", ebpf.ErrNotSupported)
		}}, "this kernel has no BPF ring buffer (it arrived in Linux 5.8); bindwatch needs one"},
		{"capget fails", host{func() (uint64, error) { return 0, errors.New("EPERM") }, "/", ok},
			"reading this process's capabilities: EPERM"},
	}
	for _, tt := range tests {
		err := tt.h.preflight()
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tt.want {
			t.Errorf("%s:\n got  %q\n want %q", tt.name, got, tt.want)
		}
	}
}
