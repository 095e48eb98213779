package codec

import (
	"bytes"
	"github.com/bindwatch/bindwatch/schemas/codec/codectest"
	"maps"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hamba/avro/v2"

	"github.com/bindwatch/bindwatch/schemas"
)

// randomEvent fills every field from r, biased towards the edges of each
// encoding: extreme integers, empty and >127-byte strings (two-byte length
// varints), times before 1970 and with sub-microsecond parts, nils.
func randomEvent(r *rand.Rand) *schemas.BindEvent {
	i64 := func() int64 {
		switch r.IntN(6) {
		case 0:
			return math.MinInt64
		case 1:
			return math.MaxInt64
		case 2:
			return 0
		case 3:
			return -r.Int64N(1 << 20)
		default:
			return r.Int64()
		}
	}
	i32 := func() int32 { return int32(i64()) }
	str := func() string {
		switch r.IntN(4) {
		case 0:
			return ""
		case 1:
			return strings.Repeat("é", 64+r.IntN(200))
		default:
			return string(rune('a'+r.IntN(26))) + "x"
		}
	}
	optStr := func() *string {
		if r.IntN(3) == 0 {
			return nil
		}
		return codectest.Ptr(str())
	}
	optI64 := func() *int64 {
		if r.IntN(3) == 0 {
			return nil
		}
		return codectest.Ptr(i64())
	}
	optI32 := func() *int32 {
		if r.IntN(3) == 0 {
			return nil
		}
		return codectest.Ptr(i32())
	}
	strMap := func() map[string]string {
		m := map[string]string{}
		for range r.IntN(4) {
			m[str()] = str()
		}
		return m
	}
	longMap := func() map[string]int64 {
		m := map[string]int64{}
		for range r.IntN(4) {
			m[str()] = i64()
		}
		return m
	}
	strs := func() []string {
		var l []string
		for range r.IntN(3) {
			l = append(l, str())
		}
		return l
	}
	optTime := func() *time.Time {
		if r.IntN(3) == 0 {
			return nil
		}
		return codectest.Ptr(time.UnixMicro(r.Int64N(8e15) - 4e15).UTC())
	}
	return &schemas.BindEvent{
		Host: str(), HostID: str(), BootID: str(), Seq: i64(),
		Time: time.Unix(r.Int64N(8e9)-4e9, r.Int64N(1e9)).UTC(),
		PID:  i32(), TID: i32(), PPID: i32(), UID: i64(), GID: i64(), Comm: str(), CgroupID: i64(),
		ContainerID: optStr(), ContainerRuntime: optStr(), MntNSID: i64(), NetNSID: i64(),
		Protocol: str(), Family: str(), Addr: str(), Port: i32(),
		RequestedAddr: optStr(), RequestedPort: optI32(),
		Freebind: r.IntN(2) == 0, Transparent: r.IntN(2) == 0, BindAddressNoPort: r.IntN(2) == 0,
		ReuseAddr: r.IntN(2) == 0, ReusePort: r.IntN(2) == 0, V6Only: r.IntN(2) == 0,
		BoundIf: i32(), BoundIfName: optStr(), Error: i32(),
		CgroupPath: optStr(), CgroupOwnerUID: optI64(),
		Unit: optStr(), ContainerName: optStr(), Image: optStr(), ImageDigest: optStr(),
		PodName: optStr(), PodNamespace: optStr(), PodUID: optStr(), WorkloadSource: optStr(),
		PodLabels: strMap(), Drops: longMap(), CaptureBlind: strs(), LeaseExpires: optTime(), HeartbeatIntervalMS: optI64(),
	}
}

// The hand-written writer must produce exactly what hamba/avro's reflection
// encoder produces for the same schema and event, for every version.
func TestEventWriterMatchesHamba(t *testing.T) {
	for v := 1; v <= schemas.Latest; v++ {
		text := codectest.SchemaText(t, v)
		s, err := avro.ParseWithCache(text, "", &avro.SchemaCache{})
		if err != nil {
			t.Fatal(err)
		}
		ew, err := newEventWriter([]byte(text))
		if err != nil {
			t.Fatalf("v%d: %v", v, err)
		}
		events := []*schemas.BindEvent{codectest.FullEvent(), codectest.NullEvent(), {}}
		r := rand.New(rand.NewPCG(1, uint64(v)))
		for range 500 {
			events = append(events, randomEvent(r))
		}
		for i, ev := range events {
			// hamba writes a map's entries in Go's random order and ours
			// sorted: bytes are compared on one-entry maps, and the full
			// ones must read back equal through hamba.
			one := oneEntryMaps(ev)
			want, err := avro.Marshal(s, one)
			if err != nil {
				t.Fatalf("v%d event %d: hamba: %v", v, i, err)
			}
			if got := ew.appendBody(nil, one); !bytes.Equal(got, want) {
				t.Fatalf("v%d event %d %+v:\n ours  % x\n hamba % x", v, i, one, got, want)
			}
			var back schemas.BindEvent
			if err := avro.Unmarshal(s, ew.appendBody(nil, ev), &back); err != nil {
				t.Fatalf("v%d event %d: hamba reads ours: %v", v, i, err)
			}
			if v == schemas.Latest && (!maps.Equal(back.PodLabels, ev.PodLabels) || !maps.Equal(back.Drops, ev.Drops)) {
				t.Fatalf("v%d event %d: maps read back as %v %v, wrote %v %v", v, i, back.PodLabels, back.Drops, ev.PodLabels, ev.Drops)
			}
		}
	}
}

// oneEntryMaps is ev with each map cut to its smallest key.
func oneEntryMaps(ev *schemas.BindEvent) *schemas.BindEvent {
	c := *ev
	if len(c.PodLabels) > 1 {
		k := slices.Min(slices.Collect(maps.Keys(c.PodLabels)))
		c.PodLabels = map[string]string{k: c.PodLabels[k]}
	}
	if len(c.Drops) > 1 {
		k := slices.Min(slices.Collect(maps.Keys(c.Drops)))
		c.Drops = map[string]int64{k: c.Drops[k]}
	}
	return &c
}

// Every avro tag of schemas.BindEvent has a writer, and no writer is for a
// field the struct does not have.
func TestEventFieldsCoverBindEvent(t *testing.T) {
	typ := reflect.TypeFor[schemas.BindEvent]()
	tags := map[string]bool{}
	for f := range typ.Fields() {
		tag := f.Tag.Get("avro")
		tags[tag] = true
		if _, ok := eventFields[tag]; !ok {
			t.Errorf("BindEvent.%s (avro %q) has no entry in eventFields", f.Name, tag)
		}
	}
	for name := range eventFields {
		if !tags[name] {
			t.Errorf("eventFields has %q, which no BindEvent field carries", name)
		}
	}
}

// An older schema is a subset of BindEvent's fields: the writer leaves the
// others out, in the schema's order.
func TestEventWriterFollowsSchemaOrder(t *testing.T) {
	ew, err := newEventWriter([]byte(`{"type":"record","name":"R","fields":[
		{"name":"port","type":"int"},{"name":"comm","type":"string"},{"name":"requested_port","type":["null","int"]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	ev := &schemas.BindEvent{Port: -2, Comm: "ab", RequestedPort: codectest.Ptr(int32(64))}
	want := []byte{0x03, 0x04, 'a', 'b', 0x02, 0x80, 0x01}
	if got := ew.appendBody(nil, ev); !bytes.Equal(got, want) {
		t.Errorf("got % x, want % x", got, want)
	}
}

// The writer allocates nothing per event, a pod's labels and a heartbeat's
// drops included (maps are written in sorted key order).
func TestEventWriterAllocatesNothing(t *testing.T) {
	ew, err := newEventWriter([]byte(codectest.SchemaText(t, schemas.Latest)))
	if err != nil {
		t.Fatal(err)
	}
	ev := codectest.FullEvent()
	dst := make([]byte, 0, 4096)
	if n := testing.AllocsPerRun(100, func() { dst = ew.appendBody(dst[:0], ev) }); n != 0 {
		t.Errorf("%v allocations per event", n)
	}
}
