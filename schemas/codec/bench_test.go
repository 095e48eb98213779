package codec

import (
	"github.com/bindwatch/bindwatch/schemas/codec/codectest"
	"testing"

	"github.com/hamba/avro/v2"

	"github.com/bindwatch/bindwatch/schemas"
)

// BenchmarkEncode measures the agent's hot path: one single-object message
// appended to a reused buffer. Target: ≤ 300 ns and ≤ 1 allocation.
func BenchmarkEncode(b *testing.B) {
	text, err := schemas.BindEventSchema(schemas.Latest)
	if err != nil {
		b.Fatal(err)
	}
	enc, err := NewSingleObject([]byte(text))
	if err != nil {
		b.Fatal(err)
	}
	// A bind, the hot path (v2's own fields at their bind values), and a
	// snapshot record with every field and two holders.
	bind := codectest.FullEvent()
	bind.Kind, bind.Holders, bind.SnapshotIncomplete, bind.SnapshotSockets = "bind", nil, nil, 0
	bind.SnapshotID, bind.SnapshotSource, bind.PortExplicit = nil, nil, nil
	for _, tc := range []struct {
		name string
		ev   *schemas.BindEvent
	}{{"bind", bind}, {"snapshot", codectest.FullEvent()}} {
		b.Run(tc.name, func(b *testing.B) {
			buf := make([]byte, 0, 1024)
			var err error
			b.ReportAllocs()
			for b.Loop() {
				buf, err = enc.Append(buf[:0], tc.ev)
				if err != nil {
					b.Fatal(err)
				}
			}
			b.SetBytes(int64(len(buf)))
		})
	}
}

// BenchmarkEncodeHamba is the same event through hamba/avro's reflection
// encoder (body only, the writer reused): the path eventwriter.go replaces,
// kept to show why.
func BenchmarkEncodeHamba(b *testing.B) {
	s, err := avro.ParseWithCache(codectest.SchemaText(b, schemas.Latest), "", &avro.SchemaCache{})
	if err != nil {
		b.Fatal(err)
	}
	w := avro.NewWriter(nil, 1024)
	ev := codectest.FullEvent()
	b.ReportAllocs()
	for b.Loop() {
		w.Reset(nil)
		w.WriteVal(s, ev)
		if w.Error != nil {
			b.Fatal(w.Error)
		}
	}
	b.SetBytes(int64(len(w.Buffer())))
}
