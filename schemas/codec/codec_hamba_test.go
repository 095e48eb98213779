package codec

import (
	"github.com/bindwatch/bindwatch/schemas/codec/codectest"
	"go/parser"
	"go/token"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hamba/avro/v2"
)

// hamba's own fingerprint hashes its String(), which keeps logicalType, so
// for v1 it is not the spec's: using it on the wire would make our
// single-object messages unreadable to spec-following consumers.
func TestHambaFingerprintIsNotTheSpecs(t *testing.T) {
	text := codectest.SchemaText(t, 1)
	s, err := avro.ParseWithCache(text, "", &avro.SchemaCache{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(s.String(), `"logicalType":"timestamp-micros"`) {
		t.Errorf("hamba's String() lost logicalType (hamba changed?): %s", s.String())
	}
	raw, err := s.FingerprintUsing(avro.CRC64Avro)
	if err != nil {
		t.Fatal(err)
	}
	var hamba uint64
	for i := range 8 { // hamba returns the CRC big-endian
		hamba = hamba<<8 | uint64(raw[i])
	}
	ours, err := Fingerprint([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	if hamba == ours {
		t.Fatalf("hamba's fingerprint equals the spec's (%#016x): hamba fixed canonical form?", ours)
	}
	// Same CRC, different input: hamba's form through our CRC gives its value.
	if got := rabin64([]byte(s.String())); got != hamba {
		t.Errorf("CRC-64-AVRO of hamba's String() = %#016x, hamba says %#016x", got, hamba)
	}
	t.Logf("v1: spec %#016x, hamba FingerprintUsing(CRC64Avro) %#016x", ours, hamba)
}

// The Avro library must stay replaceable: only the generic decoder
// (codec_hamba.go) and the audit records' codec (versioned.go) may import
// it, and registry.go its separate registry client package.
func TestHambaConfined(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	// The generic decoder, the audit's versioned records and the registry
	// client are hamba's; the event writer and the fast reader are not.
	allowed := map[string][]string{
		"github.com/hamba/avro/v2":          {"codec_hamba.go", "versioned.go"},
		"github.com/hamba/avro/v2/registry": {"registry.go"},
		"github.com/modern-go/reflect2":     {"codec_hamba.go"},
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		parsed, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range parsed.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if !strings.HasPrefix(path, "github.com/hamba/") && !strings.HasPrefix(path, "github.com/modern-go/") {
				continue
			}
			if !slices.Contains(allowed[path], f) {
				t.Errorf("%s imports %s; only %s may", f, path, allowed[path])
			}
		}
	}
}

// decodeBody's values are the package's own shapes whatever the nesting:
// union wrappers gone, records as ordered []Field, fixed as []byte.
func TestDecodeBodyShapes(t *testing.T) {
	const schema = `{"type":"record","name":"Outer","namespace":"t","fields":[
		{"name":"inner","type":["null",{"type":"record","name":"Inner","fields":[
			{"name":"z","type":"string"},{"name":"a","type":["null","long"]}]}]},
		{"name":"list","type":{"type":"array","items":["null","Inner"]}},
		{"name":"byname","type":{"type":"map","values":["null","int"]}},
		{"name":"mac","type":{"type":"fixed","name":"MAC","size":2}},
		{"name":"when","type":["null",{"type":"long","logicalType":"timestamp-micros"}]},
		{"name":"none","type":["null","string"]}]}`
	s, err := avro.ParseWithCache(schema, "", &avro.SchemaCache{})
	if err != nil {
		t.Fatal(err)
	}
	when := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)
	type inner struct {
		Z string `avro:"z"`
		A *int64 `avro:"a"`
	}
	in := struct {
		Inner  *inner          `avro:"inner"`
		List   []*inner        `avro:"list"`
		ByName map[string]*int `avro:"byname"`
		MAC    [2]byte         `avro:"mac"`
		When   *time.Time      `avro:"when"`
		None   *string         `avro:"none"`
	}{
		Inner:  &inner{Z: "q", A: codectest.Ptr(int64(-3))},
		List:   []*inner{nil, {Z: "r"}},
		ByName: map[string]*int{"k": codectest.Ptr(7), "n": nil},
		MAC:    [2]byte{0xbe, 0xef},
		When:   &when,
	}
	body, err := avro.Marshal(s, in)
	if err != nil {
		t.Fatal(err)
	}
	c, err := newBodyCodec([]byte(schema))
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.decodeBody(body)
	if err != nil {
		t.Fatal(err)
	}
	want := []Field{
		{"inner", []Field{{"z", "q"}, {"a", int64(-3)}}},
		{"list", []any{nil, []Field{{"z", "r"}, {"a", nil}}}},
		{"byname", map[string]any{"k": 7, "n": nil}},
		{"mac", []byte{0xbe, 0xef}},
		{"when", when},
		{"none", nil},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("decoded\n %#v\nwant\n %#v", got, want)
	}
}
