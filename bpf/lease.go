package bpf

import (
	"fmt"
	"github.com/cilium/ebpf"
	"time"

	"golang.org/x/sys/unix"
)

// The lease is a boot-clock deadline in the pinned lease map: the agent
// renews it while it runs, and when it has passed every program returns at
// once and counts the skip (Drops.Orphaned). Restarts, upgrades and crashes
// shorter than the lease lose nothing; a stopped or removed agent stops
// costing every bind within the lease.

func bootNS() (uint64, error) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return 0, fmt.Errorf("reading CLOCK_BOOTTIME: %w", err)
	}
	return uint64(ts.Nano()), nil
}

// expiredFor is how long the lease in m has been expired; 0 when it has
// not, or when there is none.
func expiredFor(m *ebpf.Map) (time.Duration, error) {
	var until uint64
	if err := m.Lookup(uint32(0), &until); err != nil {
		return 0, fmt.Errorf("reading the capture lease: %w", err)
	}
	now, err := bootNS()
	if err != nil {
		return 0, err
	}
	if until != 0 && now > until {
		return time.Duration(now - until), nil
	}
	return 0, nil
}

// RenewLease extends capture by the orphan timeout from now; with no
// timeout it clears the lease, so capture never stops by itself.
func (p *Probe) RenewLease() error {
	var until uint64
	if p.orphanTimeout > 0 {
		now, err := bootNS()
		if err != nil {
			return err
		}
		until = now + uint64(p.orphanTimeout)
	}
	if err := p.coll.Maps["lease"].Put(uint32(0), until); err != nil {
		return fmt.Errorf("renewing the capture lease: %w", err)
	}
	return nil
}

// OrphanTimeout is the lease length; 0 when there is no lease.
func (p *Probe) OrphanTimeout() time.Duration { return p.orphanTimeout }

// Orphaned is how long the lease this probe found had been expired when it
// loaded: how long capture was off because no agent ran (0: it was not).
func (p *Probe) Orphaned() time.Duration { return p.orphaned }

// LeaseExpired is how long the lease has been expired now; 0 while it is
// renewed, or when there is none.
func (p *Probe) LeaseExpired() (time.Duration, error) { return expiredFor(p.coll.Maps["lease"]) }
