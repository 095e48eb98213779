package codec

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/bindwatch/bindwatch/schemas"
)

// The agent encodes every event, so this is the hot path, written here
// rather than left to hamba/avro. hamba's reflection encoder took 300-330
// ns an event on this project's 2-core test host (BenchmarkEncodeHamba),
// over the 300 ns budget; its profile had 96% of the time inside hamba: a
// sync.Map lookup keyed by the schema's 32-byte fingerprint on every call
// (16%), then an interface call and error check per field and varints
// appended a byte at a time. Pointer fields and time.Time were not the cost
// (9% and 3%). This writer takes about 210 ns with no allocation
// (BenchmarkEncode). Its plan is compiled from the schema text at start,
// so field order and types come from the schema and a schema it cannot
// fill is refused; TestEventWriterMatchesHamba keeps its bytes identical to
// hamba's.

type appendFunc func(dst []byte, ev *schemas.BindEvent) []byte

// eventField is how one BindEvent field is written, and the schema type it
// is written for (as schema text, logicalType included).
type eventField struct {
	avroType string
	write    appendFunc
}

// eventFields has one entry per avro tag of schemas.BindEvent
// (TestEventFieldsCoverBindEvent).
var eventFields = map[string]eventField{
	"host":                 {`"string"`, func(d []byte, e *schemas.BindEvent) []byte { return appendAvroString(d, e.Host) }},
	"host_id":              {`"string"`, func(d []byte, e *schemas.BindEvent) []byte { return appendAvroString(d, e.HostID) }},
	"boot_id":              {`"string"`, func(d []byte, e *schemas.BindEvent) []byte { return appendAvroString(d, e.BootID) }},
	"seq":                  {`"long"`, func(d []byte, e *schemas.BindEvent) []byte { return appendLong(d, e.Seq) }},
	"time":                 {`{"type":"long","logicalType":"timestamp-micros"}`, func(d []byte, e *schemas.BindEvent) []byte { return appendLong(d, e.Time.UnixMicro()) }},
	"pid":                  {`"int"`, func(d []byte, e *schemas.BindEvent) []byte { return appendLong(d, int64(e.PID)) }},
	"tid":                  {`"int"`, func(d []byte, e *schemas.BindEvent) []byte { return appendLong(d, int64(e.TID)) }},
	"ppid":                 {`"int"`, func(d []byte, e *schemas.BindEvent) []byte { return appendLong(d, int64(e.PPID)) }},
	"uid":                  {`"long"`, func(d []byte, e *schemas.BindEvent) []byte { return appendLong(d, e.UID) }},
	"gid":                  {`"long"`, func(d []byte, e *schemas.BindEvent) []byte { return appendLong(d, e.GID) }},
	"comm":                 {`"string"`, func(d []byte, e *schemas.BindEvent) []byte { return appendAvroString(d, e.Comm) }},
	"cgroup_id":            {`"long"`, func(d []byte, e *schemas.BindEvent) []byte { return appendLong(d, e.CgroupID) }},
	"container_id":         {`["null","string"]`, func(d []byte, e *schemas.BindEvent) []byte { return appendNullableString(d, e.ContainerID) }},
	"container_runtime":    {`["null","string"]`, func(d []byte, e *schemas.BindEvent) []byte { return appendNullableString(d, e.ContainerRuntime) }},
	"mntns_id":             {`"long"`, func(d []byte, e *schemas.BindEvent) []byte { return appendLong(d, e.MntNSID) }},
	"netns_id":             {`"long"`, func(d []byte, e *schemas.BindEvent) []byte { return appendLong(d, e.NetNSID) }},
	"protocol":             {`"string"`, func(d []byte, e *schemas.BindEvent) []byte { return appendAvroString(d, e.Protocol) }},
	"family":               {`"string"`, func(d []byte, e *schemas.BindEvent) []byte { return appendAvroString(d, e.Family) }},
	"addr":                 {`"string"`, func(d []byte, e *schemas.BindEvent) []byte { return appendAvroString(d, e.Addr) }},
	"port":                 {`"int"`, func(d []byte, e *schemas.BindEvent) []byte { return appendLong(d, int64(e.Port)) }},
	"requested_addr":       {`["null","string"]`, func(d []byte, e *schemas.BindEvent) []byte { return appendNullableString(d, e.RequestedAddr) }},
	"requested_port":       {`["null","int"]`, func(d []byte, e *schemas.BindEvent) []byte { return appendNullableInt(d, e.RequestedPort) }},
	"freebind":             {`"boolean"`, func(d []byte, e *schemas.BindEvent) []byte { return appendBool(d, e.Freebind) }},
	"transparent":          {`"boolean"`, func(d []byte, e *schemas.BindEvent) []byte { return appendBool(d, e.Transparent) }},
	"bind_address_no_port": {`"boolean"`, func(d []byte, e *schemas.BindEvent) []byte { return appendBool(d, e.BindAddressNoPort) }},
	"reuseaddr":            {`"boolean"`, func(d []byte, e *schemas.BindEvent) []byte { return appendBool(d, e.ReuseAddr) }},
	"reuseport":            {`"boolean"`, func(d []byte, e *schemas.BindEvent) []byte { return appendBool(d, e.ReusePort) }},
	"v6only":               {`"boolean"`, func(d []byte, e *schemas.BindEvent) []byte { return appendBool(d, e.V6Only) }},
	"bound_if":             {`"int"`, func(d []byte, e *schemas.BindEvent) []byte { return appendLong(d, int64(e.BoundIf)) }},
	"bound_if_name":        {`["null","string"]`, func(d []byte, e *schemas.BindEvent) []byte { return appendNullableString(d, e.BoundIfName) }},
	"error":                {`"int"`, func(d []byte, e *schemas.BindEvent) []byte { return appendLong(d, int64(e.Error)) }},
	// v2
	"kind":                {`"string"`, func(d []byte, e *schemas.BindEvent) []byte { return appendAvroString(d, e.Kind) }},
	"cookie":              {`"long"`, func(d []byte, e *schemas.BindEvent) []byte { return appendLong(d, e.Cookie) }},
	"backlog":             {`"int"`, func(d []byte, e *schemas.BindEvent) []byte { return appendLong(d, int64(e.Backlog)) }},
	"listen_duration_ns":  {`"long"`, func(d []byte, e *schemas.BindEvent) []byte { return appendLong(d, e.ListenDurationNS) }},
	"exposure":            {`["null","string"]`, func(d []byte, e *schemas.BindEvent) []byte { return appendNullableString(d, e.Exposure) }},
	"host_netns":          {`["null","boolean"]`, func(d []byte, e *schemas.BindEvent) []byte { return appendNullableBool(d, e.HostNetNS) }},
	"exe":                 {`["null","string"]`, func(d []byte, e *schemas.BindEvent) []byte { return appendNullableString(d, e.Exe) }},
	"snapshot_id":         {`["null","string"]`, func(d []byte, e *schemas.BindEvent) []byte { return appendNullableString(d, e.SnapshotID) }},
	"holders":             {holdersType, func(d []byte, e *schemas.BindEvent) []byte { return appendHolders(d, e.Holders) }},
	"port_explicit":       {`["null","boolean"]`, func(d []byte, e *schemas.BindEvent) []byte { return appendNullableBool(d, e.PortExplicit) }},
	"snapshot_sockets":    {`"long"`, func(d []byte, e *schemas.BindEvent) []byte { return appendLong(d, e.SnapshotSockets) }},
	"snapshot_source":     {`["null","string"]`, func(d []byte, e *schemas.BindEvent) []byte { return appendNullableString(d, e.SnapshotSource) }},
	"snapshot_incomplete": {`{"type":"array","items":"string"}`, func(d []byte, e *schemas.BindEvent) []byte { return appendStrings(d, e.SnapshotIncomplete) }},
	"cgroup_path":         {`["null","string"]`, func(d []byte, e *schemas.BindEvent) []byte { return appendNullableString(d, e.CgroupPath) }},
	"cgroup_owner_uid":    {`["null","long"]`, func(d []byte, e *schemas.BindEvent) []byte { return appendNullableLong(d, e.CgroupOwnerUID) }},
	"suppressed":          {`"long"`, func(d []byte, e *schemas.BindEvent) []byte { return appendLong(d, e.Suppressed) }},
	// v3
	"unit":                  {`["null","string"]`, func(d []byte, e *schemas.BindEvent) []byte { return appendNullableString(d, e.Unit) }},
	"container_name":        {`["null","string"]`, func(d []byte, e *schemas.BindEvent) []byte { return appendNullableString(d, e.ContainerName) }},
	"image":                 {`["null","string"]`, func(d []byte, e *schemas.BindEvent) []byte { return appendNullableString(d, e.Image) }},
	"image_digest":          {`["null","string"]`, func(d []byte, e *schemas.BindEvent) []byte { return appendNullableString(d, e.ImageDigest) }},
	"pod_name":              {`["null","string"]`, func(d []byte, e *schemas.BindEvent) []byte { return appendNullableString(d, e.PodName) }},
	"pod_namespace":         {`["null","string"]`, func(d []byte, e *schemas.BindEvent) []byte { return appendNullableString(d, e.PodNamespace) }},
	"pod_uid":               {`["null","string"]`, func(d []byte, e *schemas.BindEvent) []byte { return appendNullableString(d, e.PodUID) }},
	"pod_labels":            {`{"type":"map","values":"string"}`, func(d []byte, e *schemas.BindEvent) []byte { return appendStringMap(d, e.PodLabels) }},
	"workload_source":       {`["null","string"]`, func(d []byte, e *schemas.BindEvent) []byte { return appendNullableString(d, e.WorkloadSource) }},
	"capture_blind":         {`{"type":"array","items":"string"}`, func(d []byte, e *schemas.BindEvent) []byte { return appendStrings(d, e.CaptureBlind) }},
	"drops":                 {`{"type":"map","values":"long"}`, func(d []byte, e *schemas.BindEvent) []byte { return appendLongMap(d, e.Drops) }},
	"lease_expires":         {`["null",{"type":"long","logicalType":"timestamp-micros"}]`, func(d []byte, e *schemas.BindEvent) []byte { return appendNullableTime(d, e.LeaseExpires) }},
	"heartbeat_interval_ms": {`["null","long"]`, func(d []byte, e *schemas.BindEvent) []byte { return appendNullableLong(d, e.HeartbeatIntervalMS) }},
	"public_key":            {`["null","bytes"]`, func(d []byte, e *schemas.BindEvent) []byte { return appendNullableBytes(d, e.PublicKey) }},
	"sealed_seqs":           {`{"type":"array","items":"long"}`, func(d []byte, e *schemas.BindEvent) []byte { return appendLongs(d, e.SealedSeqs) }},
	"signature":             {`["null","bytes"]`, func(d []byte, e *schemas.BindEvent) []byte { return appendNullableBytes(d, e.Signature) }},
}

// holdersType is the holders field's type.
const holdersType = `{"type":"array","items":{"name":"Holder","type":"record","fields":[{"name":"pid","type":"int"},{"name":"fd","type":"int"},{"name":"uid","type":"long"},{"name":"comm","type":"string"},{"name":"exe","type":["null","string"]},{"name":"cgroup_id","type":"long"},{"name":"container_id","type":["null","string"]}]}}`

// Arrays are written as hamba writes them: one block of all items whose
// count is negated and followed by its size in bytes (so a reader can skip
// it), then the empty block.
func appendBlock(dst []byte, n int, items func([]byte) []byte) []byte {
	if n == 0 {
		return append(dst, 0)
	}
	start := len(dst)
	dst = items(dst)
	size := len(dst) - start
	var buf [20]byte
	h := appendLong(appendLong(buf[:0], -int64(n)), int64(size))
	dst = append(dst, h...)
	copy(dst[start+len(h):], dst[start:start+size])
	copy(dst[start:], h)
	return append(dst, 0)
}

func appendHolders(dst []byte, hs []schemas.Holder) []byte {
	return appendBlock(dst, len(hs), func(dst []byte) []byte {
		for i := range hs {
			h := &hs[i]
			dst = appendLong(dst, int64(h.PID))
			dst = appendLong(dst, int64(h.FD))
			dst = appendLong(dst, h.UID)
			dst = appendAvroString(dst, h.Comm)
			dst = appendNullableString(dst, h.Exe)
			dst = appendLong(dst, h.CgroupID)
			dst = appendNullableString(dst, h.ContainerID)
		}
		return dst
	})
}

func appendStrings(dst []byte, ss []string) []byte {
	return appendBlock(dst, len(ss), func(dst []byte) []byte {
		for _, s := range ss {
			dst = appendAvroString(dst, s)
		}
		return dst
	})
}

// Maps are written like arrays (one block with its size), their keys in
// sorted order so that one event always has the same bytes.
func appendStringMap(dst []byte, m map[string]string) []byte {
	return appendBlock(dst, len(m), func(dst []byte) []byte {
		var buf [16]string
		for _, k := range sortedKeys(buf[:0], m) {
			dst = appendAvroString(appendAvroString(dst, k), m[k])
		}
		return dst
	})
}

func appendLongMap(dst []byte, m map[string]int64) []byte {
	return appendBlock(dst, len(m), func(dst []byte) []byte {
		var buf [16]string
		for _, k := range sortedKeys(buf[:0], m) {
			dst = appendLong(appendAvroString(dst, k), m[k])
		}
		return dst
	})
}

// sortedKeys appends m's keys to buf, sorted: a pod's labels are on every
// record of the pod, and a buffer on the caller's stack keeps the common
// case (at most 16 labels) from allocating.
func sortedKeys[V any](buf []string, m map[string]V) []string {
	keys := slices.AppendSeq(buf, maps.Keys(m))
	slices.Sort(keys)
	return keys
}

func appendLongs(dst []byte, ls []int64) []byte {
	return appendBlock(dst, len(ls), func(dst []byte) []byte {
		for _, l := range ls {
			dst = appendLong(dst, l)
		}
		return dst
	})
}

// appendNullableBytes writes nil as null, and anything else (empty too)
// as bytes, as hamba writes a []byte in a ["null","bytes"] union.
func appendNullableBytes(dst []byte, b []byte) []byte {
	if b == nil {
		return append(dst, 0)
	}
	return append(appendLong(append(dst, 2), int64(len(b))), b...)
}

func appendNullableTime(dst []byte, t *time.Time) []byte {
	if t == nil {
		return append(dst, 0)
	}
	return appendLong(append(dst, 2), t.UnixMicro())
}

func appendNullableBool(dst []byte, b *bool) []byte {
	if b == nil {
		return append(dst, 0)
	}
	return appendBool(append(dst, 2), *b)
}

// eventWriter writes a BindEvent as the Avro binary body of one schema.
type eventWriter struct {
	fields []appendFunc // in schema field order
}

// newEventWriter compiles the write plan for a BindEvent record schema.
// Every schema field must be a BindEvent field of the same Avro type (the
// plans of the schema's field and of the writer's type are Equal);
// BindEvent fields the schema lacks are left out, as Avro does.
func newEventWriter(schemaJSON []byte) (*eventWriter, error) {
	plan, err := Compile(schemaJSON)
	if err != nil {
		return nil, err
	}
	if plan.Kind != KindRecord {
		return nil, fmt.Errorf("schema %.40s… is not a record, want a record", schemaJSON)
	}
	w := &eventWriter{}
	for _, f := range plan.Fields {
		ef, ok := eventFields[f.Name]
		if !ok {
			return nil, fmt.Errorf("schema field %q has no schemas.BindEvent field", f.Name)
		}
		want, err := Compile([]byte(ef.avroType))
		if err != nil {
			return nil, fmt.Errorf("schemas.BindEvent field %q: %w", f.Name, err)
		}
		if !f.Type.Equal(want) {
			return nil, fmt.Errorf("schema field %q is %s, schemas.BindEvent writes it as %s", f.Name, f.Type.Describe(), want.Describe())
		}
		w.fields = append(w.fields, ef.write)
	}
	return w, nil
}

func (w *eventWriter) appendBody(dst []byte, ev *schemas.BindEvent) []byte {
	for _, f := range w.fields {
		dst = f(dst, ev)
	}
	return dst
}

// appendLong writes an Avro int or long: zig-zag, then a little-endian
// base-128 varint.
func appendLong(dst []byte, v int64) []byte {
	u := uint64(v<<1) ^ uint64(v>>63)
	for u >= 0x80 {
		dst = append(dst, byte(u)|0x80)
		u >>= 7
	}
	return append(dst, byte(u))
}

func appendAvroString(dst []byte, s string) []byte {
	return append(appendLong(dst, int64(len(s))), s...)
}

func appendBool(dst []byte, b bool) []byte {
	if b {
		return append(dst, 1)
	}
	return append(dst, 0)
}

// Unions ["null", T] write branch 0 alone for nil, branch 1 then the value.
func appendNullableString(dst []byte, s *string) []byte {
	if s == nil {
		return append(dst, 0)
	}
	return appendAvroString(append(dst, 2), *s)
}

func appendNullableInt(dst []byte, v *int32) []byte {
	if v == nil {
		return append(dst, 0)
	}
	return appendLong(append(dst, 2), int64(*v))
}

// appendNullableLong writes a ["null","long"] union.
func appendNullableLong(dst []byte, v *int64) []byte {
	if v == nil {
		return append(dst, 0)
	}
	return appendLong(append(dst, 2), *v)
}
