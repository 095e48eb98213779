package record

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hamba/avro/v2"

	"github.com/bindwatch/bindwatch/audit/state"
	"github.com/bindwatch/bindwatch/schemas"
	"github.com/bindwatch/bindwatch/schemas/codec"
)

func sampleEvents() []*schemas.BindEvent {
	s := func(v string) *string { return &v }
	yes, no := true, false
	rp := int32(5353)
	base := schemas.BindEvent{
		Host: "h", HostID: "id", BootID: "b", Seq: 7, Time: time.Date(2026, 12, 1, 1, 2, 3, 4000, time.UTC),
		PID: 9, UID: 1000, Comm: "c", Protocol: "UDP", Family: "AF_INET", Addr: "0.0.0.0", Port: 5353,
		NetNSID: 4026531840, Holders: []schemas.Holder{}, SnapshotIncomplete: []string{},
	}
	a := base
	a.Kind, a.Cookie, a.RequestedPort, a.Exposure, a.HostNetNS, a.Exe = "bind", 77, &rp, s("wildcard"), &yes, s("/usr/sbin/avahi-daemon")
	b := base
	b.Kind, b.SnapshotID, b.PortExplicit, b.ContainerID, b.ContainerRuntime = "snapshot", s("snap"), &no, s("abc"), s("docker")
	b.Holders = []schemas.Holder{{PID: 1, FD: 3, Comm: "x", Exe: s("/x")}, {PID: 2, FD: 4, Comm: "y"}}
	c := base
	c.Kind, c.SnapshotID, c.SnapshotSockets, c.SnapshotIncomplete, c.Error = "snapshot_end", s("snap"), 12, []string{"netns 1", "netns 2"}, 98
	d := base
	d.Kind, d.ContainerID, d.ContainerName, d.Image, d.ImageDigest = "listen", s("abc"), s("web-1"), s("docker.io/library/nginx:1.27"), s("sha256:00ff")
	d.PodName, d.PodNamespace, d.PodUID, d.WorkloadSource = s("web-7"), s("shop"), s("uid-1"), s("containerd-cri")
	d.PodLabels = map[string]string{"app": "web", "tier": "front"}
	e := base
	interval := int64(30000)
	e.Kind, e.Unit, e.CaptureBlind, e.HeartbeatIntervalMS = "heartbeat", s("sshd.service"), []string{"io_uring binds"}, &interval
	e.Drops = map[string]int64{"queue_full": 3}
	f := base
	f.Kind, f.UID, f.Suppressed = "suppressed", 1000, 4096
	g := base
	g.Kind, g.SealedSeqs, g.Signature = "seal", []int64{5, 6, 1 << 40}, []byte{1, 2, 3}
	h := base
	h.Kind, h.PublicKey = "host_key", []byte{9, 8, 7}
	return []*schemas.BindEvent{&a, &b, &c, &d, &e, &f, &g, &h}
}

// The fast reader and the generic decoder agree on every field, for each
// schema version, in both framings' single-object case.
func TestFastDecoderAgrees(t *testing.T) {
	slow, err := codec.NewDecoder("")
	if err != nil {
		t.Fatal(err)
	}
	fast, err := NewEventDecoder(slow)
	if err != nil {
		t.Fatal(err)
	}
	for v := 1; v <= schemas.Latest; v++ {
		text, _ := schemas.BindEventSchema(v)
		enc, err := codec.NewSingleObject([]byte(text))
		if err != nil {
			t.Fatal(err)
		}
		for i, e := range sampleEvents() {
			msg, err := enc.Append(nil, e)
			if err != nil {
				t.Fatal(err)
			}
			rec, err := slow.Decode(context.Background(), msg)
			if err != nil {
				t.Fatal(err)
			}
			var want, got state.Event
			EventFrom(rec, &want)
			if err := fast.Decode(context.Background(), msg, &got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(norm(want), norm(got)) {
				t.Errorf("v%d event %d:\nfast %+v\nslow %+v", v, i, got, want)
			}
			if v == schemas.Latest && (got.Suppressed != e.Suppressed || got.Workload.PodLabels["tier"] != e.PodLabels["tier"] ||
				len(got.CaptureBlind) != len(e.CaptureBlind) || (e.HeartbeatIntervalMS != nil) != (got.HeartbeatInterval > 0)) {
				t.Errorf("v%d event %d: v3 fields not read: %+v", v, i, got)
			}
			if v == schemas.Latest && (len(got.SealedSeqs) != len(e.SealedSeqs) || string(got.Signature) != string(e.Signature) || string(got.PublicKey) != string(e.PublicKey)) {
				t.Errorf("v%d event %d: seal fields not read: %+v", v, i, got)
			}
		}
	}
}

func norm(e state.Event) state.Event {
	if len(e.SnapshotIncomplete) == 0 {
		e.SnapshotIncomplete = nil
	}
	if len(e.CaptureBlind) == 0 {
		e.CaptureBlind = nil
	}
	if len(e.SealedSeqs) == 0 {
		e.SealedSeqs = nil
	}
	e.Time = e.Time.UTC()
	return e
}

// A later version with the two cgroup fields: read by name, whatever
// their position.
func TestFastReaderNewFields(t *testing.T) {
	text, _ := schemas.BindEventSchema(schemas.Latest)
	var s map[string]any
	_ = json.Unmarshal([]byte(text), &s)
	s["fields"] = append(s["fields"].([]any),
		map[string]any{"name": "cgroup_path", "type": []any{"null", "string"}, "default": nil},
		map[string]any{"name": "cgroup_owner_uid", "type": []any{"null", "long"}, "default": nil})
	v3, _ := json.Marshal(s)
	r, err := compileEvent(string(v3))
	if err != nil {
		t.Fatal(err)
	}
	e := sampleEvents()[0]
	body, err := avro.Marshal(avro.MustParse(text), e)
	if err != nil {
		t.Fatal(err)
	}
	// Append the two fields' encodings: union branch 1, then the value.
	body = append(body, 2, 10, '/', 'u', 's', 'e', 'r', 2, 0xd0, 0x0f) // "/user", 1000
	var ev state.Event
	if err := r.read(body, &ev, &codec.Interner{}); err != nil {
		t.Fatal(err)
	}
	if ev.CgroupPath == nil || *ev.CgroupPath != "/user" || ev.CgroupOwnerUID == nil || *ev.CgroupOwnerUID != 1000 || ev.Exe != "/usr/sbin/avahi-daemon" {
		t.Errorf("read %+v", ev)
	}
}

// Bytes after the record are refused, as the generic decoder refuses them:
// a message is one record, or it is not ours.
func TestFastDecoderRefusesTrailingBytes(t *testing.T) {
	slow, _ := codec.NewDecoder("")
	fast, err := NewEventDecoder(slow)
	if err != nil {
		t.Fatal(err)
	}
	text, _ := schemas.BindEventSchema(schemas.Latest)
	enc, _ := codec.NewSingleObject([]byte(text))
	msg, err := enc.Append(nil, sampleEvents()[0])
	if err != nil {
		t.Fatal(err)
	}
	var ev state.Event
	if err := fast.Decode(context.Background(), msg, &ev); err != nil {
		t.Fatal(err)
	}
	if err := fast.Decode(context.Background(), append(msg, 0, 0), &ev); err == nil {
		t.Fatal("a record followed by 2 bytes decoded")
	}
	if _, err := slow.Decode(context.Background(), append(msg, 0, 0)); err == nil {
		t.Fatal("the generic decoder took trailing bytes too")
	}
}

// The intern cache keeps no long string: its size is bounded in bytes.
func TestInternCacheBoundedInBytes(t *testing.T) {
	slow, _ := codec.NewDecoder("")
	fast, err := NewEventDecoder(slow)
	if err != nil {
		t.Fatal(err)
	}
	text, _ := schemas.BindEventSchema(schemas.Latest)
	enc, _ := codec.NewSingleObject([]byte(text))
	ev := *sampleEvents()[0]
	for i := range 50 {
		ev.Comm = fmt.Sprintf("%d%s", i, strings.Repeat("c", 100<<10))
		msg, _ := enc.Append(nil, &ev)
		var got state.Event
		if err := fast.Decode(context.Background(), msg, &got); err != nil || got.Comm != ev.Comm {
			t.Fatalf("decode: %v", err)
		}
	}
	if n := fast.intern.Bytes(); n > 1<<20 {
		t.Errorf("intern cache holds %d bytes after 50 records with 100 KB comms: long strings kept", n)
	}
}
