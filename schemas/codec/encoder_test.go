package codec

import (
	"bytes"
	"context"
	"encoding/binary"
	"github.com/bindwatch/bindwatch/schemas/codec/codectest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/bindwatch/bindwatch/schemas"
)

// wantFields lists ev's values as the decoder must return them for the
// Latest schema: in schema order, nil for null, int for Avro int, int64 for
// long, time.Time for the timestamp.
func wantFields(ev *schemas.BindEvent) []Field {
	str := func(p *string) any {
		if p == nil {
			return nil
		}
		return *p
	}
	i32 := func(p *int32) any {
		if p == nil {
			return nil
		}
		return int(*p)
	}
	return []Field{
		{"host", ev.Host}, {"host_id", ev.HostID}, {"boot_id", ev.BootID},
		{"seq", ev.Seq}, {"time", ev.Time.Truncate(time.Microsecond)},
		{"pid", int(ev.PID)}, {"tid", int(ev.TID)}, {"ppid", int(ev.PPID)},
		{"uid", ev.UID}, {"gid", ev.GID}, {"comm", ev.Comm}, {"cgroup_id", ev.CgroupID},
		{"container_id", str(ev.ContainerID)}, {"container_runtime", str(ev.ContainerRuntime)},
		{"mntns_id", ev.MntNSID}, {"netns_id", ev.NetNSID},
		{"protocol", ev.Protocol}, {"family", ev.Family}, {"addr", ev.Addr}, {"port", int(ev.Port)},
		{"requested_addr", str(ev.RequestedAddr)}, {"requested_port", i32(ev.RequestedPort)},
		{"freebind", ev.Freebind}, {"transparent", ev.Transparent},
		{"bind_address_no_port", ev.BindAddressNoPort}, {"reuseaddr", ev.ReuseAddr},
		{"reuseport", ev.ReusePort}, {"v6only", ev.V6Only},
		{"bound_if", int(ev.BoundIf)}, {"bound_if_name", str(ev.BoundIfName)}, {"error", int(ev.Error)},
		{"kind", ev.Kind}, {"cookie", ev.Cookie}, {"backlog", int(ev.Backlog)},
		{"listen_duration_ns", ev.ListenDurationNS}, {"exposure", str(ev.Exposure)},
		{"host_netns", boolOrNil(ev.HostNetNS)}, {"exe", str(ev.Exe)}, {"snapshot_id", str(ev.SnapshotID)},
		{"holders", holderValues(ev.Holders)}, {"port_explicit", boolOrNil(ev.PortExplicit)},
		{"snapshot_sockets", ev.SnapshotSockets}, {"snapshot_source", str(ev.SnapshotSource)},
		{"snapshot_incomplete", stringValues(ev.SnapshotIncomplete)},
		{"cgroup_path", str(ev.CgroupPath)}, {"cgroup_owner_uid", i64OrNil(ev.CgroupOwnerUID)}, {"suppressed", ev.Suppressed},
		{"unit", str(ev.Unit)}, {"container_name", str(ev.ContainerName)}, {"image", str(ev.Image)},
		{"image_digest", str(ev.ImageDigest)}, {"pod_name", str(ev.PodName)}, {"pod_namespace", str(ev.PodNamespace)},
		{"pod_uid", str(ev.PodUID)}, {"pod_labels", mapValues(ev.PodLabels)}, {"workload_source", str(ev.WorkloadSource)},
		{"capture_blind", stringValues(ev.CaptureBlind)}, {"drops", mapValues(ev.Drops)},
		{"lease_expires", timeOrNil(ev.LeaseExpires)}, {"heartbeat_interval_ms", i64OrNil(ev.HeartbeatIntervalMS)},
		{"public_key", bytesOrNil(ev.PublicKey)}, {"sealed_seqs", longValues(ev.SealedSeqs)}, {"signature", bytesOrNil(ev.Signature)},
	}
}

func mapValues[V any](m map[string]V) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		out[k] = v
	}
	return out
}

func bytesOrNil(b []byte) any {
	if b == nil {
		return nil
	}
	return b
}

func longValues(ls []int64) []any {
	out := []any{}
	for _, l := range ls {
		out = append(out, l)
	}
	return out
}

func timeOrNil(p *time.Time) any {
	if p == nil {
		return nil
	}
	return p.Truncate(time.Microsecond)
}

func i64OrNil(p *int64) any {
	if p == nil {
		return nil
	}
	return *p
}

func boolOrNil(p *bool) any {
	if p == nil {
		return nil
	}
	return *p
}

func holderValues(hs []schemas.Holder) []any {
	out := []any{}
	for _, h := range hs {
		var exe, cid any
		if h.Exe != nil {
			exe = *h.Exe
		}
		if h.ContainerID != nil {
			cid = *h.ContainerID
		}
		out = append(out, []Field{{"pid", int(h.PID)}, {"fd", int(h.FD)}, {"uid", h.UID}, {"comm", h.Comm},
			{"exe", exe}, {"cgroup_id", h.CgroupID}, {"container_id", cid}})
	}
	return out
}

func stringValues(ss []string) []any {
	out := []any{}
	for _, s := range ss {
		out = append(out, s)
	}
	return out
}

func compareFields(t *testing.T, got, want []Field) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d fields, want %d: %v", len(got), len(want), got)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Name != w.Name {
			t.Errorf("field %d is %q, want %q", i, g.Name, w.Name)
			continue
		}
		if gt, ok := g.Value.(time.Time); ok {
			if wt, ok := w.Value.(time.Time); !ok || !gt.Equal(wt) {
				t.Errorf("%s = %v, want %v", g.Name, g.Value, w.Value)
			}
			continue
		}
		if !reflect.DeepEqual(g.Value, w.Value) {
			t.Errorf("%s = %#v (%T), want %#v (%T)", g.Name, g.Value, g.Value, w.Value, w.Value)
		}
	}
}

func TestSingleObjectRoundTrip(t *testing.T) {
	text := codectest.SchemaText(t, schemas.Latest)
	enc, err := NewSingleObject([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	dec, err := NewDecoder("")
	if err != nil {
		t.Fatal(err)
	}
	fp, err := Fingerprint([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		ev   *schemas.BindEvent
	}{{"full", codectest.FullEvent()}, {"nulls", codectest.NullEvent()}, {"zero", &schemas.BindEvent{Time: time.Unix(0, 0)}}} {
		t.Run(tc.name, func(t *testing.T) {
			prefix := []byte("kept")
			msg, err := enc.Append(prefix, tc.ev)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(msg, []byte("kept")) {
				t.Fatalf("Append overwrote dst: % x", msg[:4])
			}
			msg = msg[len(prefix):]
			if msg[0] != 0xC3 || msg[1] != 0x01 {
				t.Errorf("marker % x, want c3 01", msg[:2])
			}
			if got := binary.LittleEndian.Uint64(msg[2:10]); got != fp {
				t.Errorf("header fingerprint %#016x, want %#016x", got, fp)
			}
			rec, err := dec.Decode(context.Background(), msg)
			if err != nil {
				t.Fatal(err)
			}
			want := Source{Framing: SingleObject, Fingerprint: fp, Version: schemas.Latest, Name: schemas.BindEventName}
			if rec.Source != want {
				t.Errorf("source %+v, want %+v", rec.Source, want)
			}
			compareFields(t, rec.Fields, wantFields(tc.ev))
		})
	}
}

func TestNullableFieldsEncodeAsUnionBranches(t *testing.T) {
	enc, err := NewSingleObject([]byte(codectest.SchemaText(t, 1)))
	if err != nil {
		t.Fatal(err)
	}
	full, err := enc.Append(nil, codectest.FullEvent())
	if err != nil {
		t.Fatal(err)
	}
	null, err := enc.Append(nil, codectest.NullEvent())
	if err != nil {
		t.Fatal(err)
	}
	// A union writes its branch index (one byte for 0 or 1) then the value:
	// null has none, so each null saves exactly the value's encoding.
	ev := codectest.FullEvent()
	saved := 0
	for _, s := range []*string{ev.ContainerID, ev.ContainerRuntime, ev.RequestedAddr, ev.BoundIfName} {
		saved += varintLen(int64(len(*s))) + len(*s)
	}
	saved += varintLen(int64(*ev.RequestedPort))
	if len(full)-len(null) != saved {
		t.Errorf("full %d bytes, all-null %d: saved %d, want %d", len(full), len(null), len(full)-len(null), saved)
	}
}

func varintLen(v int64) int {
	var b [binary.MaxVarintLen64]byte
	return binary.PutVarint(b[:], v)
}

func TestEncoderErrors(t *testing.T) {
	tests := []struct {
		name, schema, wantErr string
	}{
		{"not json", `{`, "parse schema json"},
		{"not a record", `"string"`, "want a record"},
		{"undefined reference", `{"type":"record","name":"R","fields":[{"name":"host","type":"Nope"}]}`, `undefined type "Nope"`},
		{"int where BindEvent has long", `{"type":"record","name":"R","fields":[{"name":"seq","type":"int"}]}`, `"seq" is "int", schemas.BindEvent writes it as "long"`},
		{"time without its logical type", `{"type":"record","name":"R","fields":[{"name":"time","type":"long"}]}`, `"time" is "long", schemas.BindEvent writes it as "long" (timestamp-micros)`},
		{"nullable with null last", `{"type":"record","name":"R","fields":[{"name":"comm","type":"string"},{"name":"bound_if_name","type":["string","null"]}]}`, `"bound_if_name" is ["string","null"]`},
		{"field the struct lacks", `{"type":"record","name":"R","fields":[{"name":"nope","type":"string"}]}`, "does not fit schemas.BindEvent"},
		{"field of another type", `{"type":"record","name":"R","fields":[{"name":"host","type":"long"}]}`, "does not fit schemas.BindEvent"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewSingleObject([]byte(tt.schema))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("NewSingleObject error %v, want one with %q", err, tt.wantErr)
			}
		})
	}
	for _, id := range []int{-1, 1 << 31} {
		if _, err := NewConfluent([]byte(codectest.SchemaText(t, 1)), id); err == nil {
			t.Errorf("NewConfluent(id %d) accepted an id outside the registry's int32", id)
		}
	}
	enc, err := NewSingleObject([]byte(codectest.SchemaText(t, 1)))
	if err != nil {
		t.Fatal(err)
	}
	dst := []byte{1, 2, 3}
	got, err := enc.Append(dst, nil)
	if err == nil || !bytes.Equal(got, dst) {
		t.Errorf("Append(nil event) = % x, %v; want dst back and an error", got, err)
	}
}

func TestDecodeErrors(t *testing.T) {
	dec, err := NewDecoder("")
	if err != nil {
		t.Fatal(err)
	}
	enc, err := NewSingleObject([]byte(codectest.SchemaText(t, 1)))
	if err != nil {
		t.Fatal(err)
	}
	good, err := enc.Append(nil, codectest.FullEvent())
	if err != nil {
		t.Fatal(err)
	}
	unknownFP := append([]byte{0xC3, 0x01, 0xef, 0xcd, 0xab, 0x89, 0x67, 0x45, 0x23, 0x01}, good[10:]...)
	tests := []struct {
		name    string
		msg     []byte
		wantErr string
	}{
		{"empty", nil, "empty message"},
		{"plain json", []byte(`{"host":"x"}`), "not an avro message: starts with 7b 22 68 6f"},
		{"short single-object", []byte{0xC3, 0x01, 1, 2}, "shorter than its 10-byte header"},
		{"short confluent", []byte{0, 0, 1}, "shorter than its 5-byte header"},
		{"unknown fingerprint", unknownFP, "fingerprint 0x0123456789abcdef"},
		{"confluent without registry", []byte{0, 0, 0, 0, 7, 0}, "schema id 7, but no schema registry url"},
		{"truncated body", good[:len(good)-3], "avro decode"},
		{"trailing bytes", append(append([]byte{}, good...), 0, 0), "bytes left over after the record"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec, err := dec.Decode(context.Background(), tt.msg)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Decode error %v, want one with %q (record %v)", err, tt.wantErr, rec)
			}
		})
	}
}
