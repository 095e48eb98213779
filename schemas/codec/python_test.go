package codec

import (
	"encoding/hex"
	"encoding/json"
	"github.com/bindwatch/bindwatch/schemas/codec/codectest"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/bindwatch/bindwatch/schemas"
	"github.com/bindwatch/bindwatch/test/avrotest"
)

// pyAvro runs python3-avro through test/avrotest.
func pyAvro(t *testing.T, req, ans any) {
	t.Helper()
	avrotest.PyAvro(t, req, ans)
}

// TestPythonAvroDecodesWhatWeEncode hands our messages, in both framings, to
// Apache Avro's Python reader with the v1 schema: it checks the header bytes
// itself, decodes the body, and every field must come back as we wrote it.
func TestPythonAvroDecodesWhatWeEncode(t *testing.T) {
	avrotest.Require(t)
	text := codectest.SchemaText(t, schemas.Latest)
	fp, err := Fingerprint([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	single, err := NewSingleObject([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	const schemaID = 0x01020304 // every byte distinct: catches a wrong byte order
	confluent, err := NewConfluent([]byte(text), schemaID)
	if err != nil {
		t.Fatal(err)
	}
	type answer struct {
		Framing     string         `json:"framing"`
		Fingerprint string         `json:"fingerprint"`
		SchemaID    json.Number    `json:"schema_id"`
		Record      map[string]any `json:"record"`
	}
	events := []*schemas.BindEvent{codectest.FullEvent(), codectest.NullEvent()}
	for _, tc := range []struct {
		name string
		enc  Encoder
		want answer
	}{
		{"single-object", single, answer{Framing: "single-object", Fingerprint: hex16(fp)}},
		{"confluent", confluent, answer{Framing: "confluent", SchemaID: json.Number(strconv.Itoa(schemaID))}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var msgs []string
			for _, ev := range events {
				msg, err := tc.enc.Append(nil, ev)
				if err != nil {
					t.Fatal(err)
				}
				msgs = append(msgs, hex.EncodeToString(msg))
			}
			var got []answer
			pyAvro(t, map[string]any{"op": "decode", "schema": text, "messages": msgs}, &got)
			if len(got) != len(events) {
				t.Fatalf("python decoded %d messages, want %d", len(got), len(events))
			}
			for i, ev := range events {
				g := got[i]
				if g.Framing != tc.want.Framing || g.Fingerprint != tc.want.Fingerprint || g.SchemaID != tc.want.SchemaID {
					t.Errorf("event %d header: python read %s fingerprint=%q id=%q, want %s fingerprint=%q id=%q", i,
						g.Framing, g.Fingerprint, g.SchemaID, tc.want.Framing, tc.want.Fingerprint, tc.want.SchemaID)
				}
				want := wantFields(ev)
				if len(g.Record) != len(want) {
					t.Errorf("event %d: python record has %d fields, want %d", i, len(g.Record), len(want))
				}
				for _, f := range want {
					pv, ok := g.Record[f.Name]
					if !ok {
						t.Errorf("event %d: python record lacks %s", i, f.Name)
						continue
					}
					if w := pythonShape(f.Value); !reflect.DeepEqual(pv, w) {
						t.Errorf("event %d: %s = %#v from python, want %#v", i, f.Name, pv, w)
					}
				}
			}
		})
	}
}

// pythonShape is how pyavro.py's JSON carries a decoded value.
func pythonShape(v any) any {
	switch v := v.(type) {
	case []byte:
		return hex.EncodeToString(v) // pyavro.py's JSON carries bytes in hex
	case int:
		return json.Number(strconv.Itoa(v))
	case int64:
		return json.Number(strconv.FormatInt(v, 10))
	case time.Time:
		return json.Number(strconv.FormatInt(v.UnixMicro(), 10))
	case []any:
		out := make([]any, len(v))
		for i := range v {
			out[i] = pythonShape(v[i])
		}
		return out
	case map[string]any:
		out := map[string]any{}
		for k, x := range v {
			out[k] = pythonShape(x)
		}
		return out
	case []Field:
		out := map[string]any{}
		for _, f := range v {
			out[f.Name] = pythonShape(f.Value)
		}
		return out
	default:
		return v
	}
}
