package bpf

import (
	"fmt"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// seedSequence starts a new sequence counter at the boot clock in
// nanoseconds. Within a boot, (host, boot, seq) must name one event only;
// a counter that starts afresh (the pins were removed, or snoop runs beside
// the agent) must not reuse numbers an earlier counter of this boot handed
// out, and no counter hands out more numbers than nanoseconds pass.
func seedSequence(m *ebpf.Map) error {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return fmt.Errorf("reading CLOCK_BOOTTIME: %w", err)
	}
	if err := m.Put(uint32(0), uint64(ts.Nano())); err != nil {
		return fmt.Errorf("seeding the sequence counter: %w", err)
	}
	return nil
}
