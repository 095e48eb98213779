// Package findings turns listener table changes into findings: a service
// no allow rule lets listen, or a require rule no listener of a host
// satisfies. It keeps which findings are open, so a change that leaves a
// finding as it was publishes nothing, and it is pure: no Kafka, no clock.
package findings

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"time"

	"github.com/bindwatch/bindwatch/audit/state"
)

// States of a finding.
const (
	Open     = "open"
	Resolved = "resolved"
)

// Kinds of finding.
const (
	KindListener  = "listener"  // a service no allow rule lets listen
	KindRequire   = "require"   // a require rule no listener matches
	KindCoverage  = "coverage"  // the audit's view of a host is incomplete
	KindIntegrity = "integrity" // a record in a host's name that does not verify
)

// Kinds lists the kinds, in the order metrics show them.
var Kinds = []string{KindListener, KindRequire, KindCoverage, KindIntegrity}

// Finding is one finding at one transition.
type Finding struct {
	ID          string
	Kind        string
	State       string
	Rule        string // the require rule; empty for an unexpected listener
	Host        string
	HostID      string
	BootID      string
	ContainerID string
	Exe         string
	Comm        string
	PID         int32
	UID         int64
	Protocol    string
	Addr        string
	Port        int32
	Exposure    string
	NetNS       int64
	HostNetNS   *bool
	FirstSeen   time.Time // when the service (or the want) was first seen
	Time        time.Time // of the transition: the record that caused it
	Seq         int64     // of that record, in its host's boot
	Workload    state.Workload
	// Runtime and CgroupOwnerUID say whose words Workload and ContainerID
	// are: a runtime's, or (owner set) a user's.
	Runtime        string
	CgroupOwnerUID *int64

	// Coverage findings: why (a reason code), in a sentence, and what is
	// missing.
	Reason                 string
	Detail                 string
	MissingFrom, MissingTo *int64
	Suppressed             *int64
	// AwaitingInventory: the cause stopped; the next complete inventory
	// of the host resolves the finding.
	AwaitingInventory bool
}

// ListenerID is the id of the finding for a service. It names the host,
// the namespace (the host's own whatever its inode, so a reboot keeps the
// id), protocol, address and port: what identifies the service. The boot
// id is left out on purpose: the same unexpected listener back after a
// reboot is the same finding reopened, not a new one.
func ListenerID(hostID string, hostNetNS *bool, netns int64, proto, addr string, port int32) string {
	ns := strconv.FormatInt(netns, 10)
	if hostNetNS != nil && *hostNetNS {
		ns = "host"
	}
	return digest("listener", hostID, ns, proto, addr, strconv.Itoa(int(port)))
}

// RequireID is the id of the finding for a require rule on a host.
func RequireID(hostID, rule string) string { return digest("require", hostID, rule) }

func digest(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

func fromListener(l *state.Listener) Finding {
	return Finding{
		ID:   ListenerID(l.HostID, l.HostNetNS, l.Key.NetNS, l.Protocol, l.Addr, l.Port),
		Kind: KindListener, State: Open, Workload: l.Workload, Host: l.Host, HostID: l.HostID, BootID: l.BootID, ContainerID: l.ContainerID,
		Exe: l.Exe, Comm: l.Comm, PID: l.PID, UID: l.UID, Protocol: l.Protocol, Addr: l.Addr, Port: l.Port,
		Exposure: l.Exposure, NetNS: l.Key.NetNS, HostNetNS: l.HostNetNS, FirstSeen: l.Since,
		Runtime: l.Runtime, CgroupOwnerUID: l.CgroupOwnerUID,
	}
}
