package schemas_test

import (
	"encoding/json"
	"reflect"
	"slices"
	"testing"

	"github.com/bindwatch/bindwatch/schemas"
)

// The audit's schemas follow BindEvent's rules (docs everywhere, nullable
// fields default null, times with a logical type) and their Go records
// follow the files field for field.
func TestAuditSchemas(t *testing.T) {
	for _, c := range []struct {
		name string
		text func(int) (string, error)
		rec  reflect.Type
	}{
		{"ListenerState", schemas.ListenerStateSchema, reflect.TypeFor[schemas.ListenerState]()},
		{"Finding", schemas.FindingSchema, reflect.TypeFor[schemas.Finding]()},
	} {
		t.Run(c.name, func(t *testing.T) {
			text, err := c.text(1)
			if err != nil {
				t.Fatal(err)
			}
			var s schemaFile
			if err := json.Unmarshal([]byte(text), &s); err != nil {
				t.Fatal(err)
			}
			if s.Name != c.name || s.Namespace != "io.bindwatch" || s.Doc == "" {
				t.Errorf("name %q namespace %q doc %q", s.Name, s.Namespace, s.Doc)
			}
			var names []string
			for _, f := range s.Fields {
				name := fieldName(t, f)
				names = append(names, name)
				checkField(t, name, f)
			}
			var tags []string
			for f := range c.rec.Fields() {
				tags = append(tags, f.Tag.Get("avro"))
			}
			if !slices.Equal(names, tags) {
				t.Errorf("record tags %v\nschema fields %v", tags, names)
			}
			if _, err := c.text(2); err == nil {
				t.Error("a version 2 exists: extend the compatibility tests")
			}
		})
	}
}

// The finding fields the audit issue names.
func TestFindingContractFields(t *testing.T) {
	text, _ := schemas.FindingSchema(1)
	var s schemaFile
	_ = json.Unmarshal([]byte(text), &s)
	have := map[string]bool{}
	for _, f := range s.Fields {
		have[fieldName(t, f)] = true
	}
	for _, n := range []string{"finding_id", "state", "rule", "host", "host_id", "container_id", "exe", "comm", "pid", "uid", "protocol", "addr", "port", "exposure", "first_seen"} {
		if !have[n] {
			t.Errorf("finding field %s missing", n)
		}
	}
}
