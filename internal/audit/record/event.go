package record

import (
	"time"

	"github.com/bindwatch/bindwatch/internal/audit/state"
	"github.com/bindwatch/bindwatch/pipeline/encode"
)

// EventFrom reads the fields the listener table needs from a decoded
// BindEvent of any version, by name: a v1 record (no kind) is a bind, and
// fields a version lacks (cgroup_path, cgroup_owner_uid before they exist)
// are null.
func EventFrom(r encode.Record, ev *state.Event) {
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
			if l, ok := f.Value.([]any); ok {
				for _, s := range l {
					if s, ok := s.(string); ok {
						ev.SnapshotIncomplete = append(ev.SnapshotIncomplete, s)
					}
				}
			}
		case "cgroup_path":
			if s, ok := f.Value.(string); ok {
				ev.CgroupPath = &s
			}
		case "cgroup_owner_uid":
			if f.Value != nil {
				n := asInt(f.Value)
				ev.CgroupOwnerUID = &n
			}
		}
	}
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
