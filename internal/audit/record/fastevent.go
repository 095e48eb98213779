package record

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/bindwatch/bindwatch/internal/audit/state"
	"github.com/bindwatch/bindwatch/schemas"
	"github.com/bindwatch/bindwatch/schemas/codec"
)

// EventDecoder reads BindEvent messages straight into a state.Event. The
// audit reads every event of the fleet, and the generic decoder (a []Field
// per record, a map per union) costs more than the rest of its work; this
// one walks the writer schema's fields in order, keeps the ones the table
// needs, skips the others without allocating and interns the strings that
// repeat. Messages whose writer schema it cannot compile (a foreign schema
// from the registry) go through codec.Decoder and EventFrom, the same
// fields by name. One EventDecoder per goroutine.
type EventDecoder struct {
	slow   *codec.Decoder
	byFP   map[uint64]*eventReader
	byID   map[int]*eventReader // nil value: the registry's schema is not one of ours
	intern map[string]string
}

// NewEventDecoder wraps slow, which resolves Confluent schema ids.
func NewEventDecoder(slow *codec.Decoder) (*EventDecoder, error) {
	d := &EventDecoder{slow: slow, byFP: map[uint64]*eventReader{}, byID: map[int]*eventReader{}, intern: map[string]string{}}
	for v := 1; v <= schemas.Latest; v++ {
		text, err := schemas.BindEventSchema(v)
		if err != nil {
			return nil, err
		}
		r, err := compileEvent(text)
		if err != nil {
			return nil, fmt.Errorf("BindEvent v%d: %w", v, err)
		}
		fp, err := codec.Fingerprint([]byte(text))
		if err != nil {
			return nil, err
		}
		r.version = v
		d.byFP[fp] = r
	}
	return d, nil
}

// Decode reads one framed message into ev.
func (d *EventDecoder) Decode(ctx context.Context, msg []byte, ev *state.Event) error {
	var r *eventReader
	var body []byte
	switch {
	case len(msg) >= 10 && msg[0] == 0xC3 && msg[1] == 0x01:
		r, body = d.byFP[binary.LittleEndian.Uint64(msg[2:10])], msg[10:]
	case len(msg) >= 5 && msg[0] == 0x00:
		id := int(binary.BigEndian.Uint32(msg[1:5]))
		var known bool
		if r, known = d.byID[id]; !known {
			rec, err := d.slow.Decode(ctx, msg)
			if err != nil {
				return err
			}
			if err := notAudit(rec); err != nil {
				return err
			}
			if rec.Source.Version > 0 {
				for _, c := range d.byFP {
					if c.version == rec.Source.Version {
						d.byID[id] = c
					}
				}
			} else {
				d.byID[id] = nil
			}
			EventFrom(rec, ev)
			return nil
		}
		body = msg[5:]
	}
	if r == nil {
		rec, err := d.slow.Decode(ctx, msg)
		if err != nil {
			return err
		}
		if err := notAudit(rec); err != nil {
			return err
		}
		EventFrom(rec, ev)
		return nil
	}
	if len(d.intern) > 1<<16 {
		clear(d.intern)
	}
	return r.read(body, ev, d.intern)
}

// notAudit refuses the audit's own records (a finding or listener state
// produced to the events topic by mistake): they have a host_id and a seq
// but are no event. A foreign schema is read by field name, as before.
func notAudit(rec codec.Record) error {
	if n := rec.Source.Name; n == schemas.FindingName || n == schemas.ListenerStateName {
		return fmt.Errorf("a %s record, not an event", n)
	}
	return nil
}

// Avro types the reader walks.
const (
	tNull = iota
	tBoolean
	tInt // int and long: zig-zag varints
	tFloat
	tDouble
	tString // string and bytes
	tUnion
	tArray
	tMap
	tRecord
	tEnum
	tFixed
)

type avroType struct {
	kind     int
	size     int         // fixed
	items    *avroType   // array, map
	branches []*avroType // union
	fields   []*avroType // record
}

type eventReader struct {
	version int
	fields  []*avroType
	targets []int // per field: which Event field it fills (fNone: skipped)
}

// The Event fields a record field can fill.
const (
	fNone = iota
	fKind
	fHost
	fHostID
	fBootID
	fSeq
	fTime
	fPID
	fUID
	fComm
	fContainerID
	fRuntime
	fNetNS
	fProtocol
	fFamily
	fAddr
	fPort
	fRequestedPort
	fError
	fCookie
	fExposure
	fHostNetNS
	fExe
	fSnapshotID
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
	fPodLabels
	fWorkloadSource
	fCaptureBlind
	fHeartbeatInterval
	fPublicKey
	fSealedSeqs
	fSignature
)

var targetOf = map[string]int{
	"kind": fKind, "host": fHost, "host_id": fHostID, "boot_id": fBootID, "seq": fSeq, "time": fTime,
	"pid": fPID, "uid": fUID, "comm": fComm, "container_id": fContainerID, "container_runtime": fRuntime,
	"netns_id": fNetNS, "protocol": fProtocol, "family": fFamily, "addr": fAddr, "port": fPort,
	"requested_port": fRequestedPort, "error": fError, "cookie": fCookie, "exposure": fExposure,
	"host_netns": fHostNetNS, "exe": fExe, "snapshot_id": fSnapshotID, "port_explicit": fPortExplicit,
	"snapshot_sockets": fSnapshotSockets, "snapshot_incomplete": fSnapshotIncomplete,
	"cgroup_path": fCgroupPath, "cgroup_owner_uid": fCgroupOwnerUID, "suppressed": fSuppressed,
	"unit": fUnit, "container_name": fContainerName, "image": fImage, "image_digest": fImageDigest,
	"pod_name": fPodName, "pod_namespace": fPodNamespace, "pod_uid": fPodUID, "pod_labels": fPodLabels,
	"workload_source": fWorkloadSource, "capture_blind": fCaptureBlind, "heartbeat_interval_ms": fHeartbeatInterval,
	"public_key": fPublicKey, "sealed_seqs": fSealedSeqs, "signature": fSignature,
}

func compileEvent(text string) (*eventReader, error) {
	var s map[string]any
	if err := json.Unmarshal([]byte(text), &s); err != nil {
		return nil, err
	}
	names := map[string]*avroType{}
	fields, _ := s["fields"].([]any)
	r := &eventReader{}
	for _, f := range fields {
		fm, _ := f.(map[string]any)
		t, err := compileType(fm["type"], names)
		if err != nil {
			return nil, fmt.Errorf("field %v: %w", fm["name"], err)
		}
		name, _ := fm["name"].(string)
		r.fields = append(r.fields, t)
		r.targets = append(r.targets, targetOf[name])
	}
	return r, nil
}

func compileType(v any, names map[string]*avroType) (*avroType, error) {
	switch v := v.(type) {
	case string:
		switch v {
		case "null":
			return &avroType{kind: tNull}, nil
		case "boolean":
			return &avroType{kind: tBoolean}, nil
		case "int", "long":
			return &avroType{kind: tInt}, nil
		case "float":
			return &avroType{kind: tFloat}, nil
		case "double":
			return &avroType{kind: tDouble}, nil
		case "string", "bytes":
			return &avroType{kind: tString}, nil
		}
		if t, ok := names[v]; ok {
			return t, nil
		}
		return nil, fmt.Errorf("unknown type %q", v)
	case []any:
		u := &avroType{kind: tUnion}
		for _, b := range v {
			t, err := compileType(b, names)
			if err != nil {
				return nil, err
			}
			u.branches = append(u.branches, t)
		}
		return u, nil
	case map[string]any:
		switch v["type"] {
		case "array", "map":
			key := "items"
			kind := tArray
			if v["type"] == "map" {
				key, kind = "values", tMap
			}
			it, err := compileType(v[key], names)
			if err != nil {
				return nil, err
			}
			return &avroType{kind: kind, items: it}, nil
		case "record":
			t := &avroType{kind: tRecord}
			if n, ok := v["name"].(string); ok {
				names[n] = t
			}
			fs, _ := v["fields"].([]any)
			for _, f := range fs {
				fm, _ := f.(map[string]any)
				ft, err := compileType(fm["type"], names)
				if err != nil {
					return nil, err
				}
				t.fields = append(t.fields, ft)
			}
			return t, nil
		case "enum":
			t := &avroType{kind: tEnum}
			if n, ok := v["name"].(string); ok {
				names[n] = t
			}
			return t, nil
		case "fixed":
			size, _ := v["size"].(float64)
			t := &avroType{kind: tFixed, size: int(size)}
			if n, ok := v["name"].(string); ok {
				names[n] = t
			}
			return t, nil
		}
		return compileType(v["type"], names) // {"type":"long","logicalType":...}
	}
	return nil, fmt.Errorf("unreadable type %v", v)
}

var errShort = errors.New("avro body ends early")

func varint(b []byte) (int64, []byte, error) {
	var u uint64
	for shift := uint(0); shift < 64; shift += 7 {
		if len(b) == 0 {
			return 0, nil, errShort
		}
		c := b[0]
		b = b[1:]
		u |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return int64(u>>1) ^ -int64(u&1), b, nil
		}
	}
	return 0, nil, errors.New("avro varint too long")
}

func bytesOf(b []byte) ([]byte, []byte, error) {
	n, b, err := varint(b)
	if err != nil {
		return nil, nil, err
	}
	if n < 0 || n > int64(len(b)) {
		return nil, nil, errShort
	}
	return b[:n], b[n:], nil
}

// value is one read field.
type value struct {
	null bool
	i    int64
	b    bool
	s    []byte
	strs []string
	keys []string // a map's keys, beside their values in strs
	ints []int64  // an array of longs
}

// readValue reads one value of t; keep says whether the caller wants it
// (skipped values are walked, never copied).
func readValue(b []byte, t *avroType, v *value, keep bool, intern map[string]string) ([]byte, error) {
	var err error
	switch t.kind {
	case tNull:
		v.null = true
	case tBoolean:
		if len(b) < 1 {
			return nil, errShort
		}
		v.b, b = b[0] != 0, b[1:]
	case tInt, tEnum:
		v.i, b, err = varint(b)
	case tFloat:
		if len(b) < 4 {
			return nil, errShort
		}
		b = b[4:]
	case tDouble:
		if len(b) < 8 {
			return nil, errShort
		}
		b = b[8:]
	case tFixed:
		if len(b) < t.size {
			return nil, errShort
		}
		b = b[t.size:]
	case tString:
		v.s, b, err = bytesOf(b)
	case tUnion:
		var idx int64
		if idx, b, err = varint(b); err != nil {
			return nil, err
		}
		if idx < 0 || idx >= int64(len(t.branches)) {
			return nil, fmt.Errorf("union branch %d of %d", idx, len(t.branches))
		}
		return readValue(b, t.branches[idx], v, keep, intern)
	case tRecord:
		var skip value
		for _, f := range t.fields {
			if b, err = readValue(b, f, &skip, false, intern); err != nil {
				return nil, err
			}
		}
	case tArray, tMap:
		for {
			var n int64
			if n, b, err = varint(b); err != nil {
				return nil, err
			}
			if n == 0 {
				break
			}
			if n < 0 { // a block with its size in bytes
				n = -n
				if _, b, err = varint(b); err != nil {
					return nil, err
				}
			}
			for range n {
				if t.kind == tMap {
					var key []byte
					if key, b, err = bytesOf(b); err != nil {
						return nil, err
					}
					if keep && t.items.kind == tString {
						v.keys = append(v.keys, internString(intern, key))
					}
				}
				var item value
				if b, err = readValue(b, t.items, &item, keep, intern); err != nil {
					return nil, err
				}
				if keep && t.items.kind == tString {
					v.strs = append(v.strs, internString(intern, item.s))
				}
				if keep && t.items.kind == tInt {
					v.ints = append(v.ints, item.i)
				}
			}
		}
	}
	return b, err
}

// maxInterned is the longest string the intern cache keeps: with at most
// 65 536 entries (Decode clears it past that), the cache holds at most
// 16 MiB whatever the records carry (F4: 10 000 unique 900 KB comms kept
// 9 GB). Longer strings are copied, not kept.
const maxInterned = 256

func internString(m map[string]string, b []byte) string {
	if len(b) > maxInterned {
		return string(b)
	}
	if s, ok := m[string(b)]; ok {
		return s
	}
	s := string(b)
	m[s] = s
	return s
}

func (r *eventReader) read(b []byte, ev *state.Event, intern map[string]string) error {
	*ev = state.Event{Kind: state.KindBind}
	var err error
	for i, t := range r.fields {
		target := r.targets[i]
		var v value
		if b, err = readValue(b, t, &v, target != fNone, intern); err != nil {
			return fmt.Errorf("BindEvent v%d field %d: %w", r.version, i, err)
		}
		if target == fNone {
			continue
		}
		str := func() string { return internString(intern, v.s) }
		switch target {
		case fKind:
			if len(v.s) > 0 {
				ev.Kind = str()
			}
		case fHost:
			ev.Host = str()
		case fHostID:
			ev.HostID = str()
		case fBootID:
			ev.BootID = str()
		case fSeq:
			ev.Seq = v.i
		case fTime:
			ev.Time = time.UnixMicro(v.i).UTC()
		case fPID:
			ev.PID = int32(v.i)
		case fUID:
			ev.UID = v.i
		case fComm:
			ev.Comm = str()
		case fContainerID:
			if !v.null {
				ev.ContainerID = str()
			}
		case fRuntime:
			if !v.null {
				ev.Runtime = str()
			}
		case fNetNS:
			ev.NetNS = v.i
		case fProtocol:
			ev.Protocol = str()
		case fFamily:
			ev.Family = str()
		case fAddr:
			ev.Addr = str()
		case fPort:
			ev.Port = clamp32(v.i)
		case fRequestedPort:
			if !v.null {
				ev.RequestedPort = clamp32(v.i)
			}
		case fError:
			ev.Error = clamp32(v.i)
		case fCookie:
			ev.Cookie = v.i
		case fExposure:
			if !v.null {
				ev.Exposure = str()
			}
		case fHostNetNS:
			if !v.null {
				x := v.b
				ev.HostNetNS = &x
			}
		case fExe:
			if !v.null {
				ev.Exe = str()
			}
		case fSnapshotID:
			if !v.null {
				ev.SnapshotID = str()
			}
		case fPortExplicit:
			if !v.null {
				x := v.b
				ev.PortExplicit = &x
			}
		case fSnapshotSockets:
			ev.SnapshotSockets = v.i
		case fSnapshotIncomplete:
			ev.SnapshotIncomplete = v.strs
		case fCgroupPath:
			if !v.null {
				s := str()
				ev.CgroupPath = &s
			}
		case fCgroupOwnerUID:
			if !v.null {
				x := v.i
				ev.CgroupOwnerUID = &x
			}
		case fSuppressed:
			ev.Suppressed = v.i
		case fUnit:
			ev.Workload.Unit = nullableStr(&v, str)
		case fContainerName:
			ev.Workload.ContainerName = nullableStr(&v, str)
		case fImage:
			ev.Workload.Image = nullableStr(&v, str)
		case fImageDigest:
			ev.Workload.ImageDigest = nullableStr(&v, str)
		case fPodName:
			ev.Workload.PodName = nullableStr(&v, str)
		case fPodNamespace:
			ev.Workload.PodNamespace = nullableStr(&v, str)
		case fPodUID:
			ev.Workload.PodUID = nullableStr(&v, str)
		case fPodLabels:
			if len(v.keys) > 0 {
				ev.Workload.PodLabels = make(map[string]string, len(v.keys))
				for i, k := range v.keys {
					ev.Workload.PodLabels[k] = v.strs[i]
				}
			}
		case fWorkloadSource:
			ev.Workload.Source = nullableStr(&v, str)
		case fCaptureBlind:
			ev.CaptureBlind = v.strs
		case fHeartbeatInterval:
			if !v.null {
				ev.HeartbeatInterval = time.Duration(v.i) * time.Millisecond
			}
		case fPublicKey:
			if !v.null {
				ev.PublicKey = bytes.Clone(v.s)
			}
		case fSealedSeqs:
			ev.SealedSeqs = v.ints
		case fSignature:
			if !v.null {
				ev.Signature = bytes.Clone(v.s)
			}
		}
	}
	if len(b) > 0 {
		// As the generic decoder: bytes after the record are not ours to
		// ignore (a different writer schema, or something appended).
		return fmt.Errorf("BindEvent v%d: %d bytes after the record", r.version, len(b))
	}
	return nil
}

func nullableStr(v *value, str func() string) string {
	if v.null {
		return ""
	}
	return str()
}

func clamp32(n int64) int32 {
	if n > math.MaxInt32 || n < math.MinInt32 {
		return -1
	}
	return int32(n)
}
