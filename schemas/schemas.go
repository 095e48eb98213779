// Package schemas holds the versioned Avro schemas bindwatch publishes and
// the Go record that mirrors the newest one.
//
// A new version only adds fields with defaults; the compatibility test reads
// each version's records with its neighbours' schemas in both directions.
package schemas

import (
	"embed"
	"fmt"
	"time"
)

//go:embed bind_event/*.avsc
var files embed.FS

// Latest is the newest BindEvent schema version.
const Latest = 3

// Subject is the schema registry subject, following the TopicNameStrategy
// default of "<topic>-value".
func Subject(topic string) string { return topic + "-value" }

// BindEventSchema returns the text of BindEvent schema version v.
func BindEventSchema(v int) (string, error) {
	b, err := files.ReadFile(fmt.Sprintf("bind_event/v%d.avsc", v))
	if err != nil {
		return "", fmt.Errorf("no BindEvent schema version %d (have 1..%d)", v, Latest)
	}
	return string(b), nil
}

// BindEvent is one record of the Latest schema. Field order and names follow
// the schema file; TestRecordMatchesSchema keeps them in step.
type BindEvent struct {
	Host              string    `avro:"host"`
	HostID            string    `avro:"host_id"`
	BootID            string    `avro:"boot_id"`
	Seq               int64     `avro:"seq"`
	Time              time.Time `avro:"time"`
	PID               int32     `avro:"pid"`
	TID               int32     `avro:"tid"`
	PPID              int32     `avro:"ppid"`
	UID               int64     `avro:"uid"`
	GID               int64     `avro:"gid"`
	Comm              string    `avro:"comm"`
	CgroupID          int64     `avro:"cgroup_id"`
	ContainerID       *string   `avro:"container_id"`
	ContainerRuntime  *string   `avro:"container_runtime"`
	MntNSID           int64     `avro:"mntns_id"`
	NetNSID           int64     `avro:"netns_id"`
	Protocol          string    `avro:"protocol"`
	Family            string    `avro:"family"`
	Addr              string    `avro:"addr"`
	Port              int32     `avro:"port"`
	RequestedAddr     *string   `avro:"requested_addr"`
	RequestedPort     *int32    `avro:"requested_port"`
	Freebind          bool      `avro:"freebind"`
	Transparent       bool      `avro:"transparent"`
	BindAddressNoPort bool      `avro:"bind_address_no_port"`
	ReuseAddr         bool      `avro:"reuseaddr"`
	ReusePort         bool      `avro:"reuseport"`
	V6Only            bool      `avro:"v6only"`
	BoundIf           int32     `avro:"bound_if"`
	BoundIfName       *string   `avro:"bound_if_name"`
	Error             int32     `avro:"error"`
	// From v2 on.
	Kind               string   `avro:"kind"`
	Cookie             int64    `avro:"cookie"`
	Backlog            int32    `avro:"backlog"`
	ListenDurationNS   int64    `avro:"listen_duration_ns"`
	Exposure           *string  `avro:"exposure"`
	HostNetNS          *bool    `avro:"host_netns"`
	Exe                *string  `avro:"exe"`
	SnapshotID         *string  `avro:"snapshot_id"`
	Holders            []Holder `avro:"holders"`
	PortExplicit       *bool    `avro:"port_explicit"`
	SnapshotSockets    int64    `avro:"snapshot_sockets"`
	SnapshotSource     *string  `avro:"snapshot_source"`
	SnapshotIncomplete []string `avro:"snapshot_incomplete"`
	CgroupPath         *string  `avro:"cgroup_path"`
	CgroupOwnerUID     *int64   `avro:"cgroup_owner_uid"`
	Suppressed         int64    `avro:"suppressed"`
	// From v3 on.
	Unit                *string           `avro:"unit"`
	ContainerName       *string           `avro:"container_name"`
	Image               *string           `avro:"image"`
	ImageDigest         *string           `avro:"image_digest"`
	PodName             *string           `avro:"pod_name"`
	PodNamespace        *string           `avro:"pod_namespace"`
	PodUID              *string           `avro:"pod_uid"`
	PodLabels           map[string]string `avro:"pod_labels"`
	WorkloadSource      *string           `avro:"workload_source"`
	CaptureBlind        []string          `avro:"capture_blind"`
	Drops               map[string]int64  `avro:"drops"`
	LeaseExpires        *time.Time        `avro:"lease_expires"`
	HeartbeatIntervalMS *int64            `avro:"heartbeat_interval_ms"`
	PublicKey           []byte            `avro:"public_key"`
	SealedSeqs          []int64           `avro:"sealed_seqs"`
	Signature           []byte            `avro:"signature"`
}

// Holder is a process holding one of a socket's file descriptors.
type Holder struct {
	PID         int32   `avro:"pid"`
	FD          int32   `avro:"fd"`
	UID         int64   `avro:"uid"`
	Comm        string  `avro:"comm"`
	Exe         *string `avro:"exe"`
	CgroupID    int64   `avro:"cgroup_id"`
	ContainerID *string `avro:"container_id"`
}

// Kinds of record, the values of the kind field.
const (
	KindBind        = "bind"
	KindListen      = "listen"
	KindClose       = "close"
	KindSnapshot    = "snapshot"
	KindSnapshotEnd = "snapshot_end"
	KindSuppressed  = "suppressed"
	KindHeartbeat   = "heartbeat"
	KindStop        = "stop"
	KindHostKey     = "host_key"
	KindSeal        = "seal"
	KindKeyRotation = "key_rotation"
)
