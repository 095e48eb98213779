package codec

import (
	"context"
	"github.com/bindwatch/bindwatch/schemas/codec/codectest"
	"testing"

	"github.com/bindwatch/bindwatch/schemas"
)

// FuzzDecode feeds arbitrary bytes to the consumer's decoder: it must return
// an error or a record, never panic, and a record must print as JSON.
func FuzzDecode(f *testing.F) {
	text := codectest.SchemaText(f, 1)
	single, err := NewSingleObject([]byte(text))
	if err != nil {
		f.Fatal(err)
	}
	confluent, err := NewConfluent([]byte(text), 1)
	if err != nil {
		f.Fatal(err)
	}
	for _, enc := range []Encoder{single, confluent} {
		for _, ev := range []*schemas.BindEvent{codectest.FullEvent(), codectest.NullEvent()} {
			msg, err := enc.Append(nil, ev)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(msg)
		}
	}
	f.Add([]byte{0xC3, 0x01})
	dec, err := NewDecoder("")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		rec, err := dec.Decode(context.Background(), msg)
		if err != nil {
			return
		}
		if _, err := rec.AppendJSONLine(nil); err != nil {
			t.Errorf("decoded record does not print: %v", err)
		}
	})
}
