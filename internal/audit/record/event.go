package record

import (
	"time"

	"github.com/bindwatch/bindwatch/internal/audit/state"
	"github.com/bindwatch/bindwatch/schemas/codec"
)

// EventFrom reads the fields the listener table needs from a decoded
// BindEvent of any version, by name: a v1 record (no kind) is a bind, and
// fields a version lacks (cgroup_path, cgroup_owner_uid before they exist)
// are null.
func EventFrom(r codec.Record, ev *state.Event) {
	*ev = state.Event{Kind: state.KindBind}
	for _, f := range r.Fields {
		switch f.Name {
		case "kind":
			if s, _ := f.Value.(string); s != "" {
				ev.Kind = s
			}
		case "host":
			ev.Host, _ = f.Value.(string)
		case "host_id":
			ev.HostID, _ = f.Value.(string)
		case "boot_id":
			ev.BootID, _ = f.Value.(string)
		case "seq":
			ev.Seq = asInt(f.Value)
		case "time":
			ev.Time, _ = f.Value.(time.Time)
		case "pid":
			ev.PID = int32(asInt(f.Value))
		case "uid":
			ev.UID = asInt(f.Value)
		case "comm":
			ev.Comm, _ = f.Value.(string)
		case "container_id":
			ev.ContainerID, _ = f.Value.(string)
		case "container_runtime":
			ev.Runtime, _ = f.Value.(string)
		case "netns_id":
			ev.NetNS = asInt(f.Value)
		case "protocol":
			ev.Protocol, _ = f.Value.(string)
		case "family":
			ev.Family, _ = f.Value.(string)
		case "addr":
			ev.Addr, _ = f.Value.(string)
		case "port":
			ev.Port = int32(asInt(f.Value))
		case "requested_port":
			ev.RequestedPort = int32(asInt(f.Value))
		case "error":
			ev.Error = int32(asInt(f.Value))
		case "cookie":
			ev.Cookie = asInt(f.Value)
		case "exposure":
			ev.Exposure, _ = f.Value.(string)
		case "host_netns":
			if b, ok := f.Value.(bool); ok {
				ev.HostNetNS = &b
			}
		case "exe":
			ev.Exe, _ = f.Value.(string)
		case "snapshot_id":
			ev.SnapshotID, _ = f.Value.(string)
		case "port_explicit":
			if b, ok := f.Value.(bool); ok {
				ev.PortExplicit = &b
			}
		case "snapshot_sockets":
			ev.SnapshotSockets = asInt(f.Value)
		case "snapshot_incomplete":
			ev.SnapshotIncomplete = stringsOf(f.Value)
		case "cgroup_path":
			if s, ok := f.Value.(string); ok {
				ev.CgroupPath = &s
			}
		case "cgroup_owner_uid":
			if f.Value != nil {
				n := asInt(f.Value)
				ev.CgroupOwnerUID = &n
			}
		case "suppressed":
			ev.Suppressed = asInt(f.Value)
		case "unit":
			ev.Workload.Unit, _ = f.Value.(string)
		case "container_name":
			ev.Workload.ContainerName, _ = f.Value.(string)
		case "image":
			ev.Workload.Image, _ = f.Value.(string)
		case "image_digest":
			ev.Workload.ImageDigest, _ = f.Value.(string)
		case "pod_name":
			ev.Workload.PodName, _ = f.Value.(string)
		case "pod_namespace":
			ev.Workload.PodNamespace, _ = f.Value.(string)
		case "pod_uid":
			ev.Workload.PodUID, _ = f.Value.(string)
		case "pod_labels":
			if m, ok := f.Value.(map[string]any); ok && len(m) > 0 {
				ev.Workload.PodLabels = make(map[string]string, len(m))
				for k, v := range m {
					ev.Workload.PodLabels[k], _ = v.(string)
				}
			}
		case "workload_source":
			ev.Workload.Source, _ = f.Value.(string)
		case "capture_blind":
			ev.CaptureBlind = stringsOf(f.Value)
		case "public_key":
			if b, ok := f.Value.([]byte); ok {
				ev.PublicKey = b
			}
		case "sealed_seqs":
			if l, ok := f.Value.([]any); ok {
				for _, x := range l {
					ev.SealedSeqs = append(ev.SealedSeqs, asInt(x))
				}
			}
		case "signature":
			if b, ok := f.Value.([]byte); ok {
				ev.Signature = b
			}
		case "heartbeat_interval_ms":
			if f.Value != nil {
				ev.HeartbeatInterval = time.Duration(asInt(f.Value)) * time.Millisecond
			}
		}
	}
}

func stringsOf(v any) []string {
	var out []string
	if l, ok := v.([]any); ok {
		for _, s := range l {
			if s, ok := s.(string); ok {
				out = append(out, s)
			}
		}
	}
	return out
}

func asInt(v any) int64 {
	switch v := v.(type) {
	case int:
		return int64(v)
	case int32:
		return int64(v)
	case int64:
		return v
	}
	return 0
}
