package schemas

import (
	"embed"
	"fmt"
	"time"
)

//go:embed listener_state/*.avsc finding/*.avsc
var auditFiles embed.FS

// Newest versions of the audit's own records.
const (
	ListenerStateLatest = 2
	FindingLatest       = 2
)

// ListenerStateSchema returns the text of ListenerState schema version v.
func ListenerStateSchema(v int) (string, error) {
	b, err := auditFiles.ReadFile(fmt.Sprintf("listener_state/v%d.avsc", v))
	if err != nil {
		return "", fmt.Errorf("no ListenerState schema version %d (have 1..%d)", v, ListenerStateLatest)
	}
	return string(b), nil
}

// FindingSchema returns the text of Finding schema version v.
func FindingSchema(v int) (string, error) {
	b, err := auditFiles.ReadFile(fmt.Sprintf("finding/v%d.avsc", v))
	if err != nil {
		return "", fmt.Errorf("no Finding schema version %d (have 1..%d)", v, FindingLatest)
	}
	return string(b), nil
}

// Full names of the records, as their writer schemas name them.
const (
	BindEventName     = "io.bindwatch.BindEvent"
	ListenerStateName = "io.bindwatch.ListenerState"
	FindingName       = "io.bindwatch.Finding"
)

// Values of ListenerState.record.
const (
	StateListener = "listener"
	StateHost     = "host"
)

// ListenerState is one record of the newest ListenerState schema.
type ListenerState struct {
	Record           string    `avro:"record"`
	Host             string    `avro:"host"`
	HostID           string    `avro:"host_id"`
	BootID           string    `avro:"boot_id"`
	Seq              int64     `avro:"seq"`
	Time             time.Time `avro:"time"`
	NetNSID          int64     `avro:"netns_id"`
	Cookie           int64     `avro:"cookie"`
	Protocol         string    `avro:"protocol"`
	Family           string    `avro:"family"`
	Addr             string    `avro:"addr"`
	Port             int32     `avro:"port"`
	Exposure         *string   `avro:"exposure"`
	HostNetNS        *bool     `avro:"host_netns"`
	PID              int32     `avro:"pid"`
	UID              int64     `avro:"uid"`
	Comm             string    `avro:"comm"`
	Exe              *string   `avro:"exe"`
	ContainerID      *string   `avro:"container_id"`
	ContainerRuntime *string   `avro:"container_runtime"`
	CgroupPath       *string   `avro:"cgroup_path"`
	CgroupOwnerUID   *int64    `avro:"cgroup_owner_uid"`
	SnapshotComplete bool      `avro:"snapshot_complete"`
	SnapshotID       *string   `avro:"snapshot_id"`
	SnapshotStart    int64     `avro:"snapshot_start"`
	// From v2 on.
	Workload
	LastSeen            *time.Time `avro:"last_seen"`
	HeartbeatIntervalMS *int64     `avro:"heartbeat_interval_ms"`
	Stopped             bool       `avro:"stopped"`
	PublicKey           []byte     `avro:"public_key"`
}

// Workload is who a listener belongs to, as BindEvent v3 names it; the
// audit's records carry it whole.
type Workload struct {
	Unit           *string           `avro:"unit" json:"unit"`
	ContainerName  *string           `avro:"container_name" json:"container_name"`
	Image          *string           `avro:"image" json:"image"`
	ImageDigest    *string           `avro:"image_digest" json:"image_digest"`
	PodName        *string           `avro:"pod_name" json:"pod_name"`
	PodNamespace   *string           `avro:"pod_namespace" json:"pod_namespace"`
	PodUID         *string           `avro:"pod_uid" json:"pod_uid"`
	PodLabels      map[string]string `avro:"pod_labels" json:"pod_labels"`
	WorkloadSource *string           `avro:"workload_source" json:"workload_source"`
}

// Finding is one record of the newest Finding schema; the audit prints
// findings as JSON lines with the same names.
type Finding struct {
	FindingID   string    `avro:"finding_id" json:"finding_id"`
	State       string    `avro:"state" json:"state"`
	Rule        string    `avro:"rule" json:"rule"`
	Host        string    `avro:"host" json:"host"`
	HostID      string    `avro:"host_id" json:"host_id"`
	BootID      string    `avro:"boot_id" json:"boot_id"`
	Seq         int64     `avro:"seq" json:"seq"`
	ContainerID *string   `avro:"container_id" json:"container_id"`
	Exe         *string   `avro:"exe" json:"exe"`
	Comm        string    `avro:"comm" json:"comm"`
	PID         int32     `avro:"pid" json:"pid"`
	UID         int64     `avro:"uid" json:"uid"`
	Protocol    string    `avro:"protocol" json:"protocol"`
	Addr        string    `avro:"addr" json:"addr"`
	Port        int32     `avro:"port" json:"port"`
	Exposure    *string   `avro:"exposure" json:"exposure"`
	NetNSID     int64     `avro:"netns_id" json:"netns_id"`
	HostNetNS   *bool     `avro:"host_netns" json:"host_netns"`
	FirstSeen   time.Time `avro:"first_seen" json:"first_seen"`
	Time        time.Time `avro:"time" json:"time"`
	// From v2 on.
	Kind              string `avro:"kind" json:"kind"`
	Reason            string `avro:"reason" json:"reason"`
	Detail            string `avro:"detail" json:"detail"`
	MissingFrom       *int64 `avro:"missing_from" json:"missing_from"`
	MissingTo         *int64 `avro:"missing_to" json:"missing_to"`
	Suppressed        *int64 `avro:"suppressed" json:"suppressed"`
	AwaitingInventory bool   `avro:"awaiting_inventory" json:"awaiting_inventory"`
	Workload
	ContainerRuntime *string `avro:"container_runtime" json:"container_runtime"`
	CgroupOwnerUID   *int64  `avro:"cgroup_owner_uid" json:"cgroup_owner_uid"`
}
