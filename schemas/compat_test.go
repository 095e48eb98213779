package schemas_test

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hamba/avro/v2"

	"github.com/bindwatch/bindwatch/schemas"
	"github.com/bindwatch/bindwatch/test/avrotest"
)

// family is one record's versioned schemas.
type family struct {
	name   string
	text   func(int) (string, error)
	latest int
}

var families = []family{
	{"BindEvent", schemas.BindEventSchema, schemas.Latest},
	{"ListenerState", schemas.ListenerStateSchema, schemas.ListenerStateLatest},
	{"Finding", schemas.FindingSchema, schemas.FindingLatest},
}

// schemaPairs is what the compatibility test checks: each version against
// itself and against the next.
func schemaPairs(latest int) [][2]int {
	var pairs [][2]int
	for v := 1; v <= latest; v++ {
		pairs = append(pairs, [2]int{v, v})
		if v < latest {
			pairs = append(pairs, [2]int{v, v + 1})
		}
	}
	return pairs
}

func parseFamilyVersion(t *testing.T, f family, v int) (string, *avro.RecordSchema) {
	t.Helper()
	text, err := f.text(v)
	if err != nil {
		t.Fatal(err)
	}
	return text, parseText(t, text)
}

func parseText(t *testing.T, text string) *avro.RecordSchema {
	t.Helper()
	// A private cache per parse: v1 and v2 share the name io.bindwatch.BindEvent.
	s, err := avro.ParseWithCache(text, "", &avro.SchemaCache{})
	if err != nil {
		t.Fatal(err)
	}
	return s.(*avro.RecordSchema)
}

// TestSchemaCompatibility proves, for each record and pair of versions,
// that the newer schema reads what the older wrote (backward) and the
// older reads what the newer wrote (forward): by hamba's compatibility
// check, and by actually decoding with hamba's schema resolution and with
// python3-avro's DatumReader.
func TestSchemaCompatibility(t *testing.T) {
	for _, f := range families {
		for _, p := range schemaPairs(f.latest) {
			older, newer := p[0], p[1]
			for _, dir := range []struct {
				name           string
				writer, reader int
			}{
				{"backward", older, newer},
				{"forward", newer, older},
			} {
				if older == newer && dir.name == "forward" {
					continue // the same check twice
				}
				t.Run(fmt.Sprintf("%s/%s/v%d_writes/v%d_reads", f.name, dir.name, dir.writer, dir.reader), func(t *testing.T) {
					wText, _ := parseFamilyVersion(t, f, dir.writer)
					rText, _ := parseFamilyVersion(t, f, dir.reader)
					checkTextReads(t, wText, rText)
				})
			}
		}
	}
}

// checkTextReads checks that reader reads what writer wrote.
func checkTextReads(t *testing.T, wText, rText string) {
	t.Helper()
	writer, reader := parseText(t, wText), parseText(t, rText)
	if err := avro.NewSchemaCompatibility().Compatible(reader, writer); err != nil {
		t.Fatalf("hamba: reader cannot read writer: %v", err)
	}
	resolved, err := avro.NewSchemaCompatibility().Resolve(reader, writer)
	if err != nil {
		t.Fatalf("hamba resolve: %v", err)
	}

	records := []map[string]any{sampleRecord(writer, true), sampleRecord(writer, false)}
	var bodies [][]byte
	for _, rec := range records {
		body, err := avro.Marshal(writer, rec)
		if err != nil {
			t.Fatalf("hamba encode: %v", err)
		}
		bodies = append(bodies, body)
	}

	// A fresh config per check: hamba caches decoders by the reader's
	// fingerprint, which a resolved schema shares with the reader itself,
	// so a v1->v2 decoder would otherwise be reused to read v2->v2.
	api := avro.Config{}.Freeze()
	for i, body := range bodies {
		var got map[string]any
		if err := api.Unmarshal(resolved, body, &got); err != nil {
			t.Fatalf("hamba: reading record %d: %v", i, err)
		}
		compareRead(t, "hamba", reader, records[i], got, hambaValue)
	}

	avrotest.Require(t)
	var hexBodies []string
	for _, b := range bodies {
		hexBodies = append(hexBodies, hex.EncodeToString(b))
	}
	var py []map[string]any
	avrotest.PyAvro(t, map[string]any{"op": "resolve", "writer": wText, "reader": rText, "bodies": hexBodies}, &py)
	if len(py) != len(records) {
		t.Fatalf("python read %d records, want %d", len(py), len(records))
	}
	for i := range records {
		compareRead(t, "python3-avro", reader, records[i], py[i], pythonValue)
	}
}

// sampleRecord gives every field of s a value that differs from its
// neighbours' and, for nullable fields, from the default when filled is true
// (and null when it is false).
func sampleRecord(s *avro.RecordSchema, filled bool) map[string]any {
	rec := map[string]any{}
	for i, f := range s.Fields() {
		rec[f.Name()] = sampleValue(f.Type(), f.Name(), i, filled)
	}
	return rec
}

func sampleValue(s avro.Schema, name string, i int, filled bool) any {
	if u, ok := s.(*avro.UnionSchema); ok {
		if !filled {
			return nil
		}
		for _, b := range u.Types() {
			if b.Type() != avro.Null {
				return sampleValue(b, name, i, filled)
			}
		}
	}
	if l, ok := s.(avro.LogicalTypeSchema); ok && l.Logical() != nil && l.Logical().Type() == avro.TimestampMicros {
		return time.Date(2026, 3, 14, 15, 9, 26, (i+1)*1000, time.UTC)
	}
	switch s.Type() {
	case avro.String:
		return "value of " + name
	case avro.Bytes:
		return []byte("bytes of " + name)
	case avro.Long:
		return int64(1)<<40 + int64(i)
	case avro.Int:
		return 1000 + i
	case avro.Boolean:
		return i%2 == 0
	case avro.Array:
		return []any{sampleValue(s.(*avro.ArraySchema).Items(), name+"[0]", i, filled)}
	case avro.Map:
		return map[string]any{"key of " + name: sampleValue(s.(*avro.MapSchema).Values(), name+"[key]", i, filled)}
	case avro.Record:
		return sampleRecord(s.(*avro.RecordSchema), filled)
	}
	panic(fmt.Sprintf("sampleValue: no sample for %s field %s: extend this test", s.Type(), name))
}

// compareRead checks a record read with reader: fields the writer had carry
// the written value, fields only the reader has carry its default.
func compareRead(t *testing.T, who string, reader *avro.RecordSchema, written, got map[string]any, norm func(any) string) {
	t.Helper()
	if len(got) != len(reader.Fields()) {
		t.Errorf("%s: read %d fields, reader schema has %d", who, len(got), len(reader.Fields()))
	}
	for _, f := range reader.Fields() {
		want, wrote := written[f.Name()]
		if !wrote {
			if !f.HasDefault() {
				t.Errorf("%s: field %s is new and has no default", who, f.Name())
				continue
			}
			want = f.Default()
		}
		g, ok := got[f.Name()]
		if !ok {
			t.Errorf("%s: field %s missing", who, f.Name())
			continue
		}
		if norm(g) != norm(want) {
			t.Errorf("%s: field %s = %s, want %s", who, f.Name(), norm(g), norm(want))
		}
	}
}

// hambaValue prints a value hamba decoded (or one we wrote), unwrapping
// hamba's {"string": v} union maps.
func hambaValue(v any) string {
	if m, ok := v.(map[string]any); ok && len(m) == 1 {
		for _, inner := range m {
			return hambaValue(inner)
		}
	}
	switch v := v.(type) {
	case []byte:
		return hex.EncodeToString(v)
	case time.Time:
		return strconv.FormatInt(v.UnixMicro(), 10)
	case int:
		return strconv.Itoa(v)
	case int32:
		return strconv.Itoa(int(v))
	case nil:
		return "null"
	}
	return fmt.Sprint(v)
}

// pythonValue prints a value python decoded (JSON numbers kept exact) or
// one we wrote.
func pythonValue(v any) string {
	if n, ok := v.(json.Number); ok {
		return n.String()
	}
	return hambaValue(v)
}

// runPython sends req to a testdata script and decodes its answer into ans;
// the error carries the script's stderr.
// withExtraField is v1 with one more field appended: a stand-in for v2.
func withExtraField(t *testing.T, field string) string {
	t.Helper()
	text, err := schemas.BindEventSchema(1)
	if err != nil {
		t.Fatal(err)
	}
	var s map[string]any
	if err := json.Unmarshal([]byte(text), &s); err != nil {
		t.Fatal(err)
	}
	var f any
	if err := json.Unmarshal([]byte(field), &f); err != nil {
		t.Fatal(err)
	}
	s["fields"] = append(s["fields"].([]any), f)
	out, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// The machinery the pairs will go through the day v2 lands, on a synthetic
// v2: adding a field with a default resolves both ways, and adding one
// without a default is caught by hamba and by python3-avro alike.
func TestCompatibilityCheckOnSyntheticV2(t *testing.T) {
	v1, err := schemas.BindEventSchema(1)
	if err != nil {
		t.Fatal(err)
	}
	good := withExtraField(t, `{"name":"backlog","type":["null","int"],"default":null,"doc":"listen() backlog."}`)
	t.Run("backward", func(t *testing.T) { checkTextReads(t, v1, good) })
	t.Run("forward", func(t *testing.T) { checkTextReads(t, good, v1) })

	bad := withExtraField(t, `{"name":"backlog","type":"int","doc":"listen() backlog, no default."}`)
	writer, reader := parseText(t, v1), parseText(t, bad)
	if err := avro.NewSchemaCompatibility().Compatible(reader, writer); err == nil {
		t.Error("hamba: a new field without a default passed as backward compatible")
	}
	avrotest.Require(t)
	body, err := avro.Marshal(writer, sampleRecord(writer, true))
	if err != nil {
		t.Fatal(err)
	}
	var py []map[string]any
	err = avrotest.TryPyAvro(t, map[string]any{"op": "resolve", "writer": v1, "reader": bad, "bodies": []string{hex.EncodeToString(body)}}, &py)
	if err == nil {
		t.Errorf("python3-avro read v1 data with a reader field lacking a default: %v", py)
	} else if !strings.Contains(err.Error(), "backlog") {
		t.Errorf("python3-avro failed, but not over the new field: %v", err)
	}
}
