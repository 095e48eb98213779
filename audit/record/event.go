package record

import (
	"bytes"
	"math"
	"time"

	"github.com/bindwatch/bindwatch/audit/state"
	"github.com/bindwatch/bindwatch/schemas/codec"
)

// target is the Event field a BindEvent field fills; fNone: none (the
// field is walked, not kept).
type target uint8

const (
	fNone target = iota
	fKind
	fHost
	fHostID
	fBootID
	fSeq
	fTime
	fPID
	fUID
	fComm
	fNetNS
	fProtocol
	fFamily
	fAddr
	fPort
	fRequestedPort
	fError
	fCookie
	fContainerID
	fRuntime
	fExposure
	fExe
	fSnapshotID
	fHostNetNS
	fPortExplicit
	fSnapshotSockets
	fSnapshotIncomplete
	fCgroupPath
	fCgroupOwnerUID
	fSuppressed
	fUnit
	fContainerName
	fImage
	fImageDigest
	fPodName
	fPodNamespace
	fPodUID
	fWorkloadSource
	fPodLabels
	fCaptureBlind
	fHeartbeatInterval
	fPublicKey
	fSealedSeqs
	fSignature
)

// eventFields is the one map from BindEvent field names to the Event: the
// fast reader compiles each writer schema's fields against it, and
// EventFrom reads a foreign schema's records by it. Fields the table does
// not need are not here, and are skipped. A v1 record (no kind) is a bind,
// and fields a version lacks are left as they are (null).
var eventFields = map[string]target{
	"kind": fKind, "host": fHost, "host_id": fHostID, "boot_id": fBootID, "seq": fSeq, "time": fTime,
	"pid": fPID, "uid": fUID, "comm": fComm, "netns_id": fNetNS, "protocol": fProtocol, "family": fFamily,
	"addr": fAddr, "port": fPort, "requested_port": fRequestedPort, "error": fError, "cookie": fCookie,
	"container_id": fContainerID, "container_runtime": fRuntime, "exposure": fExposure, "exe": fExe,
	"snapshot_id": fSnapshotID, "host_netns": fHostNetNS, "port_explicit": fPortExplicit,
	"snapshot_sockets": fSnapshotSockets, "snapshot_incomplete": fSnapshotIncomplete,
	"cgroup_path": fCgroupPath, "cgroup_owner_uid": fCgroupOwnerUID, "suppressed": fSuppressed,
	"unit": fUnit, "container_name": fContainerName, "image": fImage, "image_digest": fImageDigest,
	"pod_name": fPodName, "pod_namespace": fPodNamespace, "pod_uid": fPodUID,
	"workload_source": fWorkloadSource, "pod_labels": fPodLabels, "capture_blind": fCaptureBlind,
	"heartbeat_interval_ms": fHeartbeatInterval, "public_key": fPublicKey, "sealed_seqs": fSealedSeqs,
	"signature": fSignature,
}

// set fills t's Event field from v, read by the fast reader or converted
// from the generic decoder's value. A switch, not a func value per field:
// the audit reads every event of the fleet, and an indirect call per field
// cost a third more per record (BenchmarkFastDecode).
func (t target) set(ev *state.Event, v *codec.Value, in *codec.Interner) {
	switch t {
	case fKind:
		if len(v.Bytes) > 0 {
			ev.Kind = in.String(v.Bytes)
		}
	case fHost:
		ev.Host = in.String(v.Bytes)
	case fHostID:
		ev.HostID = in.String(v.Bytes)
	case fBootID:
		ev.BootID = in.String(v.Bytes)
	case fSeq:
		ev.Seq = v.Int
	case fTime:
		ev.Time = time.UnixMicro(v.Int).UTC()
	case fPID:
		ev.PID = int32(v.Int)
	case fUID:
		ev.UID = v.Int
	case fComm:
		ev.Comm = in.String(v.Bytes)
	case fNetNS:
		ev.NetNS = v.Int
	case fProtocol:
		ev.Protocol = in.String(v.Bytes)
	case fFamily:
		ev.Family = in.String(v.Bytes)
	case fAddr:
		ev.Addr = in.String(v.Bytes)
	case fPort:
		ev.Port = clamp32(v.Int)
	case fRequestedPort:
		if !v.Null {
			ev.RequestedPort = clamp32(v.Int)
		}
	case fError:
		ev.Error = clamp32(v.Int)
	case fCookie:
		ev.Cookie = v.Int
	case fContainerID:
		ev.ContainerID = nullableString(v, in)
	case fRuntime:
		ev.Runtime = nullableString(v, in)
	case fExposure:
		ev.Exposure = nullableString(v, in)
	case fExe:
		ev.Exe = nullableString(v, in)
	case fSnapshotID:
		ev.SnapshotID = nullableString(v, in)
	case fHostNetNS:
		ev.HostNetNS = nullableBool(v)
	case fPortExplicit:
		ev.PortExplicit = nullableBool(v)
	case fSnapshotSockets:
		ev.SnapshotSockets = v.Int
	case fSnapshotIncomplete:
		ev.SnapshotIncomplete = v.Strs
	case fCgroupPath:
		if !v.Null {
			s := in.String(v.Bytes)
			ev.CgroupPath = &s
		}
	case fCgroupOwnerUID:
		if !v.Null {
			x := v.Int
			ev.CgroupOwnerUID = &x
		}
	case fSuppressed:
		ev.Suppressed = v.Int
	case fUnit:
		ev.Workload.Unit = nullableString(v, in)
	case fContainerName:
		ev.Workload.ContainerName = nullableString(v, in)
	case fImage:
		ev.Workload.Image = nullableString(v, in)
	case fImageDigest:
		ev.Workload.ImageDigest = nullableString(v, in)
	case fPodName:
		ev.Workload.PodName = nullableString(v, in)
	case fPodNamespace:
		ev.Workload.PodNamespace = nullableString(v, in)
	case fPodUID:
		ev.Workload.PodUID = nullableString(v, in)
	case fWorkloadSource:
		ev.Workload.Source = nullableString(v, in)
	case fPodLabels:
		if len(v.Keys) > 0 && len(v.Keys) == len(v.Strs) {
			ev.Workload.PodLabels = make(map[string]string, len(v.Keys))
			for i, k := range v.Keys {
				ev.Workload.PodLabels[k] = v.Strs[i]
			}
		}
	case fCaptureBlind:
		ev.CaptureBlind = v.Strs
	case fHeartbeatInterval:
		if !v.Null {
			ev.HeartbeatInterval = time.Duration(v.Int) * time.Millisecond
		}
	case fPublicKey:
		ev.PublicKey = nullableBytes(v)
	case fSealedSeqs:
		ev.SealedSeqs = v.Ints
	case fSignature:
		ev.Signature = nullableBytes(v)
	}
}

func nullableString(v *codec.Value, in *codec.Interner) string {
	if v.Null {
		return ""
	}
	return in.String(v.Bytes)
}

func nullableBool(v *codec.Value) *bool {
	if v.Null {
		return nil
	}
	x := v.Bool
	return &x
}

// nullableBytes copies: the value aliases the message.
func nullableBytes(v *codec.Value) []byte {
	if v.Null {
		return nil
	}
	return bytes.Clone(v.Bytes)
}

func clamp32(n int64) int32 {
	if n > math.MaxInt32 || n < math.MinInt32 {
		return -1
	}
	return int32(n)
}

// EventFrom reads the fields the listener table needs from a BindEvent of
// any version or foreign schema decoded by the generic decoder, by name,
// through the same eventFields the fast reader uses.
func EventFrom(r codec.Record, ev *state.Event) {
	*ev = state.Event{Kind: state.KindBind}
	for _, f := range r.Fields {
		if t := eventFields[f.Name]; t != fNone {
			v := valueOf(f.Value)
			t.set(ev, &v, nil)
		}
	}
}

// valueOf is a generic decoder's value as the fast reader would have read
// it.
func valueOf(x any) codec.Value {
	var v codec.Value
	switch x := x.(type) {
	case nil:
		v.Null = true
	case string:
		v.Bytes = []byte(x)
	case []byte:
		v.Bytes = x
	case bool:
		v.Bool = x
	case int, int32, int64:
		v.Int = asInt(x)
	case time.Time:
		v.Int = x.UnixMicro()
	case []any:
		for _, item := range x {
			switch item := item.(type) {
			case string:
				v.Strs = append(v.Strs, item)
			case int, int32, int64:
				v.Ints = append(v.Ints, asInt(item))
			}
		}
	case map[string]any:
		for k, item := range x {
			switch item := item.(type) {
			case string:
				v.Keys, v.Strs = append(v.Keys, k), append(v.Strs, item)
			case int, int32, int64:
				v.Keys, v.Ints = append(v.Keys, k), append(v.Ints, asInt(item))
			}
		}
	}
	return v
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
