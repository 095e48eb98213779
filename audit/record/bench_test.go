package record

import (
	"context"
	"testing"

	"github.com/bindwatch/bindwatch/audit/state"
	"github.com/bindwatch/bindwatch/schemas"
	"github.com/bindwatch/bindwatch/schemas/codec"
)

// BenchmarkFastDecode reads the sample events (binds, snapshots, a
// listener with a pod, a heartbeat, a seal) as the audit reads every event
// of the fleet.
func BenchmarkFastDecode(b *testing.B) {
	slow, _ := codec.NewDecoder("")
	fast, err := NewEventDecoder(slow)
	if err != nil {
		b.Fatal(err)
	}
	text, _ := schemas.BindEventSchema(schemas.Latest)
	enc, _ := codec.NewSingleObject([]byte(text))
	var msgs [][]byte
	for _, e := range sampleEvents() {
		m, err := enc.Append(nil, e)
		if err != nil {
			b.Fatal(err)
		}
		msgs = append(msgs, m)
	}
	ctx := context.Background()
	var ev state.Event
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if err := fast.Decode(ctx, msgs[i%len(msgs)], &ev); err != nil {
			b.Fatal(err)
		}
	}
}
