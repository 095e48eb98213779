package enrich

import (
	"errors"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestWallTime(t *testing.T) {
	// 2024-05-01T12:00:00Z booted 1000.5 s earlier.
	at := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	offset := at.UnixNano() - 1_000_500_000_000
	tests := []struct {
		name   string
		bootNS uint64
		offset int64
		want   time.Time
	}{
		{"at the sample", 1_000_500_000_000, offset, at},
		{"a microsecond later", 1_000_500_001_000, offset, at.Add(time.Microsecond)},
		{"an hour of suspend later", 1_000_500_000_000 + uint64(time.Hour), offset, at.Add(time.Hour)},
		{"boot itself", 0, offset, at.Add(-1_000_500_000_000)},
		{"clock stepped back a second", 1_000_500_000_000, offset - int64(time.Second), at.Add(-time.Second)},
		{"epoch offset zero", 1_700_000_000_123_456_789, 0, time.Unix(1_700_000_000, 123_456_789)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := WallTime(tt.bootNS, tt.offset)
			if !got.Equal(tt.want) {
				t.Errorf("WallTime(%d, %d) = %v, want %v", tt.bootNS, tt.offset, got, tt.want)
			}
			if got.Location() != time.UTC {
				t.Errorf("location %v, want UTC", got.Location())
			}
		})
	}
}

// A fresh CLOCK_BOOTTIME reading converted with a real sample must land on
// the wall clock: this is what proves the sign and the clocks are right.
func TestClockRealClocks(t *testing.T) {
	c, err := NewClock()
	if err != nil {
		t.Fatal(err)
	}
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		t.Fatal(err)
	}
	got := c.Wall(uint64(ts.Nano()))
	now := time.Now()
	if d := now.Sub(got); d < -3*time.Millisecond || d > 3*time.Millisecond {
		t.Errorf("converted %v, now %v: off by %v", got, now, d)
	}
	// CLOCK_MONOTONIC stops in suspend and CLOCK_BOOTTIME does not; mixing
	// them up would still pass above on a never-suspended machine, but the
	// offset must at least be a plausible epoch time of boot.
	boot := time.Unix(0, c.OffsetNS())
	if boot.Before(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)) || boot.After(now) {
		t.Errorf("implied boot time %v is implausible", boot)
	}
}

func TestClockResampleFollowsStep(t *testing.T) {
	samples := []int64{1_000, 1_000 + int64(2*time.Second)}
	fail := false
	c := &Clock{sample: func() (int64, error) {
		if fail {
			return 0, errors.New("clock_gettime: EINVAL")
		}
		s := samples[0]
		samples = samples[1:]
		return s, nil
	}}
	if err := c.Resample(); err != nil {
		t.Fatal(err)
	}
	if got := c.Wall(5_000).UnixNano(); got != 6_000 {
		t.Errorf("before the step: %d, want 6000", got)
	}
	if err := c.Resample(); err != nil {
		t.Fatal(err)
	}
	if got := c.Wall(5_000).UnixNano(); got != 6_000+int64(2*time.Second) {
		t.Errorf("after the step: %d, want the 2 s step applied", got)
	}
	fail = true
	if err := c.Resample(); err == nil {
		t.Fatal("want the sampling error")
	}
	if got := c.OffsetNS(); got != 1_000+int64(2*time.Second) {
		t.Errorf("a failed resample changed the offset to %d", got)
	}
}
