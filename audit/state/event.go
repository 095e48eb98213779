// Package state keeps each host's current listeners from its event
// timeline: snapshots and their ends, listens, closes and UDP server binds.
// It is pure: events in, changes out, no Kafka and no clock.
package state

import (
	"time"

	"github.com/bindwatch/bindwatch/schemas"
)

// Event is the part of a BindEvent record the listener table reads.
type Event struct {
	Kind                 string // bind, listen, close, snapshot, snapshot_end, suppressed, heartbeat, stop
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
	Workload             Workload
	Suppressed           int64         // suppressed: records dropped; 0 says the flood is over
	CaptureBlind         []string      // heartbeat: what capture cannot see
	HeartbeatInterval    time.Duration // heartbeat and stop: the agent's interval
	PublicKey            []byte        // host_key, key_rotation: the agent's (new) key
	SealedSeqs           []int64       // seal: the records it signs
	Signature            []byte        // seal, key_rotation
}

// Workload is who a process belongs to beyond its container id (BindEvent
// v3): its unit, or its container's name and image and its pod.
type Workload struct {
	Unit, ContainerName, Image, ImageDigest string
	PodName, PodNamespace, PodUID           string
	PodLabels                               map[string]string
	Source                                  string
}

// SourcePending is the workload_source of a container whose runtime had
// not written what the agent reads yet: later records of the container
// carry its workload (Updated).
const SourcePending = "pending"

// Kinds of event: the values of the schema's kind field, whose names
// schemas owns.
const (
	KindBind        = schemas.KindBind
	KindListen      = schemas.KindListen
	KindClose       = schemas.KindClose
	KindSnapshot    = schemas.KindSnapshot
	KindSnapshotEnd = schemas.KindSnapshotEnd
	KindSuppressed  = schemas.KindSuppressed
	KindHeartbeat   = schemas.KindHeartbeat
	KindStop        = schemas.KindStop
	KindHostKey     = schemas.KindHostKey
	KindSeal        = schemas.KindSeal
	KindKeyRotation = schemas.KindKeyRotation
)

// isUDP says whether a protocol has no listen(): its servers are bound
// sockets.
func isUDP(proto string) bool { return proto == "UDP" || proto == "UDPLITE" }
