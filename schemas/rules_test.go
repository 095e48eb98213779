package schemas_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/bindwatch/bindwatch/schemas"
)

// The names DESIGN.md promises consumers; every version must keep them.
var contractFields = []string{
	"host", "host_id", "boot_id", "seq", "time", "pid", "tid", "ppid", "uid", "gid",
	"comm", "cgroup_id", "container_id", "container_runtime", "mntns_id", "netns_id",
	"protocol", "family", "addr", "port", "requested_addr", "requested_port",
	"freebind", "transparent", "bind_address_no_port", "reuseaddr", "reuseport", "v6only",
	"bound_if", "bound_if_name", "error",
}

func TestSchemaRules(t *testing.T) {
	for _, v := range versions() {
		t.Run(fmt.Sprintf("v%d", v), func(t *testing.T) {
			_, s := loadSchema(t, v)
			if s.Type != "record" || s.Name != "BindEvent" {
				t.Errorf("type %q name %q, want record BindEvent", s.Type, s.Name)
			}
			// One stable namespace: consumers key on io.bindwatch.BindEvent.
			if s.Namespace != "io.bindwatch" {
				t.Errorf("namespace %q, want io.bindwatch", s.Namespace)
			}
			if strings.TrimSpace(s.Doc) == "" {
				t.Error("record has no doc")
			}
			seen := map[string]bool{}
			for _, f := range s.Fields {
				name := fieldName(t, f)
				if seen[name] {
					t.Errorf("field %s twice", name)
				}
				seen[name] = true
				checkField(t, name, f)
			}
			for _, name := range contractFields {
				if !seen[name] {
					t.Errorf("contract field %s missing", name)
				}
			}
		})
	}
}

func checkField(t *testing.T, name string, f map[string]json.RawMessage) {
	t.Helper()
	var doc string
	if err := json.Unmarshal(f["doc"], &doc); err != nil || strings.TrimSpace(doc) == "" {
		t.Errorf("field %s has no doc", name)
	}
	typ := bytes.TrimSpace(f["type"])
	switch typ[0] {
	case '[':
		// Nullable: null first, so the default can be null, and default null.
		var branches []json.RawMessage
		if err := json.Unmarshal(typ, &branches); err != nil {
			t.Fatalf("field %s: %v", name, err)
		}
		if len(branches) != 2 || string(branches[0]) != `"null"` {
			t.Errorf("field %s is the union %s, want [\"null\", T]", name, typ)
		}
		def, ok := f["default"]
		if !ok || string(bytes.TrimSpace(def)) != "null" {
			t.Errorf("nullable field %s has default %s, want null", name, def)
		}
	case '{':
		var obj struct{ Type, LogicalType string }
		if err := json.Unmarshal(typ, &obj); err != nil {
			t.Fatalf("field %s: %v", name, err)
		}
		if obj.LogicalType == "timestamp-micros" && obj.Type != "long" {
			t.Errorf("field %s: timestamp-micros on %s, want long", name, obj.Type)
		}
	}
	// Times carry a logical type so every reader sees an instant, not a
	// bare number.
	if isTimeField(name) {
		want := `{"type":"long","logicalType":"timestamp-micros"}`
		var got, w any
		_ = json.Unmarshal(typ, &got)
		_ = json.Unmarshal([]byte(want), &w)
		if fmt.Sprint(got) != fmt.Sprint(w) {
			t.Errorf("time field %s is %s, want %s", name, typ, want)
		}
	}
}

// isTimeField says which names hold a wall-clock instant.
func isTimeField(name string) bool {
	return name == "time" || strings.HasSuffix(name, "_time") || strings.HasSuffix(name, "_at")
}

func TestSchemaVersionsExist(t *testing.T) {
	for _, v := range versions() {
		if _, err := schemas.BindEventSchema(v); err != nil {
			t.Errorf("version %d: %v", v, err)
		}
	}
	for _, v := range []int{0, schemas.Latest + 1} {
		if _, err := schemas.BindEventSchema(v); err == nil {
			t.Errorf("BindEventSchema(%d) succeeded beyond 1..Latest", v)
		}
	}
}

// A new version only adds fields, each with a default, and keeps every
// field of the one before with the same type, so both directions resolve.
func TestVersionsOnlyAddFieldsWithDefaults(t *testing.T) {
	for v := 2; v <= schemas.Latest; v++ {
		_, prev := loadSchema(t, v-1)
		_, next := loadSchema(t, v)
		old := map[string]string{}
		for _, f := range prev.Fields {
			old[fieldName(t, f)] = compactJSON(t, f["type"])
		}
		for _, f := range next.Fields {
			name := fieldName(t, f)
			typ, existed := old[name]
			if !existed {
				if _, ok := f["default"]; !ok {
					t.Errorf("v%d adds %s without a default", v, name)
				}
				continue
			}
			if got := compactJSON(t, f["type"]); got != typ {
				t.Errorf("v%d changes %s from %s to %s", v, name, typ, got)
			}
			delete(old, name)
		}
		for name := range old {
			t.Errorf("v%d drops %s", v, name)
		}
	}
}

func compactJSON(t *testing.T, raw json.RawMessage) string {
	t.Helper()
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestRecordMatchesSchema keeps the Go record in step with the Latest schema:
// the avro tags of schemas.BindEvent are exactly its field names, in order,
// and each Go type is the one the Avro type maps to.
func TestRecordMatchesSchema(t *testing.T) {
	_, s := loadSchema(t, schemas.Latest)
	var schemaNames []string
	schemaTypes := map[string]string{}
	for _, f := range s.Fields {
		name := fieldName(t, f)
		schemaNames = append(schemaNames, name)
		schemaTypes[name] = compactJSON(t, f["type"])
	}
	var tags []string
	for f := range reflectFields() {
		tags = append(tags, f.tag)
		want, ok := goTypeFor[schemaTypes[f.tag]]
		if f.tag == "holders" {
			want, ok = "[]schemas.Holder", true
		}
		if ok && f.goType != want {
			t.Errorf("BindEvent.%s is %s, schema type %s wants %s", f.name, f.goType, schemaTypes[f.tag], want)
		}
		if !ok && schemaTypes[f.tag] != "" {
			t.Errorf("BindEvent.%s: schema type %s has no Go mapping in this test", f.name, schemaTypes[f.tag])
		}
	}
	if !slices.Equal(tags, schemaNames) {
		t.Errorf("BindEvent avro tags\n %v\nschema v%d fields\n %v", tags, schemas.Latest, schemaNames)
	}
}

// goTypeFor is the Go type BindEvent uses for each Avro field type.
var goTypeFor = map[string]string{
	`"string"`:  "string",
	`"long"`:    "int64",
	`"int"`:     "int32",
	`"boolean"`: "bool",
	`{"type":"long","logicalType":"timestamp-micros"}`: "time.Time",
	`["null","string"]`:                                         "*string",
	`["null","int"]`:                                            "*int32",
	`["null","long"]`:                                           "*int64",
	`["null","boolean"]`:                                        "*bool",
	`{"type":"array","items":"string"}`:                         "[]string",
	`{"type":"map","values":"string"}`:                          "map[string]string",
	`{"type":"array","items":"long"}`:                           "[]int64",
	`["null","bytes"]`:                                          "[]uint8",
	`{"type":"map","values":"long"}`:                            "map[string]int64",
	`["null",{"type":"long","logicalType":"timestamp-micros"}]`: "*time.Time",
}
