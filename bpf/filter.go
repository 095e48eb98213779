package bpf

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/cilium/ebpf"
)

// Bits of struct capture_config.flags (enum capture_flags in bindwatch.h).
const (
	filterPID        = uint32(bindwatchCaptureFlagsFILTER_PID)
	filterUID        = uint32(bindwatchCaptureFlagsFILTER_UID)
	filterPorts      = uint32(bindwatchCaptureFlagsFILTER_PORTS)
	filterCgroup     = uint32(bindwatchCaptureFlagsFILTER_CGROUP)
	filterMntNS      = uint32(bindwatchCaptureFlagsFILTER_MNTNS)
	captureErrors    = uint32(bindwatchCaptureFlagsCAPTURE_ERRORS)
	mptcpHooked      = uint32(bindwatchCaptureFlagsMPTCP_HOOKED)
	captureListeners = uint32(bindwatchCaptureFlagsCAPTURE_LISTENERS)
	reportOffSyscall = uint32(bindwatchCaptureFlagsREPORT_OFF_SYSCALL)
)

// MaxFilterPorts is how many ports the kernel's port filter holds
// (MAX_FILTER_PORTS in bindwatch.h).
const MaxFilterPorts = int(bindwatchLimitsMAX_FILTER_PORTS)

const maxFilterPorts = MaxFilterPorts

// Filter selects which binds the kernel reports. The zero Filter reports
// every successful bind.
type Filter struct {
	// PID keeps binds of this process (tgid) only; 0 keeps all.
	PID uint32
	// UID keeps binds of this user only, when HasUID is set (uid 0 is valid).
	UID    uint32
	HasUID bool
	// Ports keeps binds whose effective or requested port is listed.
	Ports []uint16
	// Errors reports failed binds and listens too.
	Errors bool
	// Listeners reports listen and close records, not only binds.
	Listeners bool
	// BudgetPerSec is how many records a non-root user may have per second
	// on each CPU, BudgetBurst how many at once; over it its records are
	// counted (Probe.Suppressed) and dropped. 0: no budget.
	BudgetPerSec, BudgetBurst uint32
	// CgroupMap and MntNSMap are paths of pinned BPF hash maps, keyed by
	// cgroup id and by mount-namespace inode, as bcc's --cgroupmap and
	// --mntnsmap take them. Only tasks found in them are reported. They are
	// read at load time; changing them needs a new Probe.
	CgroupMap string
	MntNSMap  string
}

// ParsePorts parses a comma-separated port list such as "80,443".
func ParsePorts(s string) ([]uint16, error) {
	var ports []uint16
	for _, field := range strings.Split(s, ",") {
		field = strings.TrimSpace(field)
		n, err := strconv.ParseUint(field, 10, 16)
		if err != nil || n == 0 {
			return nil, fmt.Errorf("invalid port %q in %q: want a comma-separated list of ports 1-65535", field, s)
		}
		ports = append(ports, uint16(n))
	}
	if len(ports) > maxFilterPorts {
		return nil, fmt.Errorf("%d ports given, at most %d can be filtered", len(ports), maxFilterPorts)
	}
	return ports, nil
}

// config is base (wakeup threshold, generation) with f's filters in it.
func (f Filter) config(mptcp bool, base bindwatchCaptureConfig) bindwatchCaptureConfig {
	c := base
	if f.PID != 0 {
		c.Flags |= filterPID
		c.Pid = f.PID
	}
	if f.HasUID {
		c.Flags |= filterUID
		c.Uid = f.UID
	}
	if len(f.Ports) > 0 {
		c.Flags |= filterPorts
	}
	if f.CgroupMap != "" {
		c.Flags |= filterCgroup
	}
	if f.MntNSMap != "" {
		c.Flags |= filterMntNS
	}
	if f.Errors {
		c.Flags |= captureErrors
	}
	if f.Listeners {
		c.Flags |= captureListeners
	}
	c.BudgetPerSec, c.BudgetBurst = f.BudgetPerSec, f.BudgetBurst
	if mptcp {
		c.Flags |= mptcpHooked
	}
	return c
}

// writeFilter installs f into the loaded maps. The port set goes in before
// the flags that enable it, so a live change never filters on a half-written
// set.
func writeFilter(ports, config *ebpf.Map, f Filter, mptcp bool, base bindwatchCaptureConfig) error {
	if len(f.Ports) > maxFilterPorts {
		return fmt.Errorf("%d ports given, at most %d can be filtered", len(f.Ports), maxFilterPorts)
	}
	var stale []uint16
	var key uint16
	it := ports.Iterate()
	for it.Next(&key, new(uint8)) {
		if !slices.Contains(f.Ports, key) {
			stale = append(stale, key)
		}
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("reading port filter: %w", err)
	}
	for _, p := range f.Ports {
		if err := ports.Put(p, uint8(1)); err != nil {
			return fmt.Errorf("adding port %d to the filter: %w", p, err)
		}
	}
	if err := config.Put(uint32(0), f.config(mptcp, base)); err != nil {
		return fmt.Errorf("writing filter config: %w", err)
	}
	for _, p := range stale {
		if err := ports.Delete(p); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("removing port %d from the filter: %w", p, err)
		}
	}
	return nil
}
