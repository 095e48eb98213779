package bpf

import (
	"errors"
	"fmt"
	"os"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/features"
	"golang.org/x/sys/unix"
)

// Linux capability numbers (CAP_PERFMON and CAP_BPF arrived in 5.8).
const (
	capSysAdmin = 21
	capPerfmon  = 38
	capBPF      = 39
)

// KernelBTFPath is where the kernel exposes its own BTF.
const KernelBTFPath = "/sys/kernel/btf/vmlinux"

// host is what Preflight inspects; tests replace it.
type host struct {
	effectiveCaps func() (uint64, error)
	btfPath       string
	ringBuffer    func() error
}

var realHost = host{
	effectiveCaps: effectiveCaps,
	btfPath:       KernelBTFPath,
	ringBuffer:    func() error { return features.HaveMapType(ebpf.RingBuf) },
}

// Preflight returns one sentence naming what this host lacks to run the
// probe, or nil.
func Preflight() error { return realHost.preflight() }

func (h host) preflight() error {
	caps, err := h.effectiveCaps()
	if err != nil {
		return fmt.Errorf("reading this process's capabilities: %w", err)
	}
	if !hasCap(caps, capSysAdmin) && !(hasCap(caps, capBPF) && hasCap(caps, capPerfmon)) {
		return errors.New("must run as root, or with CAP_BPF and CAP_PERFMON, to load BPF programs")
	}
	if _, err := os.Stat(h.btfPath); err != nil {
		return fmt.Errorf("this kernel has no BTF at %s (built without CONFIG_DEBUG_INFO_BTF); bindwatch needs it to read kernel structs", h.btfPath)
	}
	if err := h.ringBuffer(); err != nil {
		if errors.Is(err, ebpf.ErrNotSupported) {
			return errors.New("this kernel has no BPF ring buffer (it arrived in Linux 5.8); bindwatch needs one")
		}
		return fmt.Errorf("probing for the BPF ring buffer: %w", err)
	}
	return nil
}

func hasCap(set uint64, c uint) bool { return set&(1<<c) != 0 }

func effectiveCaps() (uint64, error) {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return 0, err
	}
	return uint64(data[0].Effective) | uint64(data[1].Effective)<<32, nil
}
