// Package state keeps each host's current listeners from its event
// timeline: snapshots and their ends, listens, closes and UDP server binds.
// It is pure: events in, changes out, no Kafka and no clock.
package state

import "time"

// Event is the part of a BindEvent record the listener table reads.
type Event struct {
	Kind                 string // bind, listen, close, snapshot, snapshot_end
	Host, HostID, BootID string
	Seq                  int64
	Time                 time.Time
	PID                  int32
	UID                  int64
	Comm                 string
	ContainerID          string
	Runtime              string
	NetNS                int64
	Protocol, Family     string
	Addr                 string
	Port                 int32
	RequestedPort        int32
	Error                int32
	Cookie               int64
	Exposure             string
	HostNetNS            *bool
	Exe                  string
	SnapshotID           string
	PortExplicit         *bool
	SnapshotIncomplete   []string
	SnapshotSockets      int64
	CgroupPath           *string
	CgroupOwnerUID       *int64
}

// Kinds of event.
const (
	KindBind        = "bind"
	KindListen      = "listen"
	KindClose       = "close"
	KindSnapshot    = "snapshot"
	KindSnapshotEnd = "snapshot_end"
)

// isUDP says whether a protocol has no listen(): its servers are bound
// sockets.
func isUDP(proto string) bool { return proto == "UDP" || proto == "UDPLITE" }
