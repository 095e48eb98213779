package main

import (
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// newWallClock converts the kernel's boot-relative timestamps (CLOCK_BOOTTIME)
// to wall-clock time, using the offset between the two clocks at start.
func newWallClock() (func(uint64) time.Time, error) {
	var boot unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &boot); err != nil {
		return nil, fmt.Errorf("reading CLOCK_BOOTTIME: %w", err)
	}
	offset := time.Now().UnixNano() - boot.Nano()
	return func(bootNS uint64) time.Time { return time.Unix(0, offset+int64(bootNS)) }, nil
}
