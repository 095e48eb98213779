package enrich

import (
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// WallTime converts a CLOCK_BOOTTIME reading, as bpf_ktime_get_boot_ns
// returns it, to wall-clock time given offset = CLOCK_REALTIME −
// CLOCK_BOOTTIME at about the same moment.
func WallTime(bootNS uint64, offsetNS int64) time.Time {
	return time.Unix(0, int64(bootNS)+offsetNS).UTC()
}

// Clock converts the kernel's boot-relative timestamps to wall-clock time.
// The offset between the two clocks changes whenever NTP or an operator
// steps the wall clock (and when a slewing NTP accumulates), so it is
// resampled: Run does it on a timer, other callers call Resample.
type Clock struct {
	offsetNS int64
	sample   func() (int64, error)
}

// NewClock samples the offset once.
func NewClock() (*Clock, error) {
	c := &Clock{sample: sampleBootOffset}
	if err := c.Resample(); err != nil {
		return nil, err
	}
	return c, nil
}

// Resample measures the offset again. On error the previous offset stays.
func (c *Clock) Resample() error {
	off, err := c.sample()
	if err != nil {
		return err
	}
	c.offsetNS = off
	return nil
}

// Wall is the wall-clock time of a CLOCK_BOOTTIME reading.
func (c *Clock) Wall(bootNS uint64) time.Time { return WallTime(bootNS, c.offsetNS) }

// OffsetNS is the current CLOCK_REALTIME − CLOCK_BOOTTIME in nanoseconds.
func (c *Clock) OffsetNS() int64 { return c.offsetNS }

// sampleBootOffset reads CLOCK_BOOTTIME on both sides of CLOCK_REALTIME and
// keeps the tightest of a few brackets: a preemption between the reads
// would otherwise skew every timestamp until the next sample.
func sampleBootOffset() (int64, error) {
	best, bestWidth := int64(0), int64(-1)
	for range 3 {
		var b1, r, b2 unix.Timespec
		if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &b1); err != nil {
			return 0, fmt.Errorf("reading CLOCK_BOOTTIME: %w", err)
		}
		if err := unix.ClockGettime(unix.CLOCK_REALTIME, &r); err != nil {
			return 0, fmt.Errorf("reading CLOCK_REALTIME: %w", err)
		}
		if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &b2); err != nil {
			return 0, fmt.Errorf("reading CLOCK_BOOTTIME: %w", err)
		}
		width := b2.Nano() - b1.Nano()
		if bestWidth < 0 || width < bestWidth {
			best = r.Nano() - (b1.Nano() + width/2)
			bestWidth = width
		}
	}
	return best, nil
}
