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
		name   string
		text   func(int) (string, error)
		latest int
		rec    reflect.Type
	}{
		{"ListenerState", schemas.ListenerStateSchema, schemas.ListenerStateLatest, reflect.TypeFor[schemas.ListenerState]()},
		{"Finding", schemas.FindingSchema, schemas.FindingLatest, reflect.TypeFor[schemas.Finding]()},
	} {
		t.Run(c.name, func(t *testing.T) {
			text, err := c.text(c.latest)
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
			if tags := avroTags(c.rec); !slices.Equal(names, tags) {
				t.Errorf("record tags %v\nschema fields %v", tags, names)
			}
			if _, err := c.text(c.latest + 1); err == nil {
				t.Errorf("a version %d exists: raise the Latest constant", c.latest+1)
			}
		})
	}
}

// avroTags lists a record's avro tags in order, an embedded struct's
// (schemas.Workload) in its place, as hamba flattens it.
func avroTags(rt reflect.Type) []string {
	var tags []string
	for f := range rt.Fields() {
		if f.Anonymous {
			tags = append(tags, avroTags(f.Type)...)
			continue
		}
		tags = append(tags, f.Tag.Get("avro"))
	}
	return tags
}

// The finding fields the audit issue names.
func TestFindingContractFields(t *testing.T) {
	text, _ := schemas.FindingSchema(schemas.FindingLatest)
	var s schemaFile
	_ = json.Unmarshal([]byte(text), &s)
	have := map[string]bool{}
	for _, f := range s.Fields {
		have[fieldName(t, f)] = true
	}
	for _, n := range []string{"finding_id", "state", "rule", "host", "host_id", "container_id", "exe", "comm", "pid", "uid", "protocol", "addr", "port", "exposure", "first_seen",
		"kind", "reason", "unit", "container_name", "image", "image_digest", "pod_name", "pod_namespace", "pod_uid", "pod_labels", "workload_source"} {
		if !have[n] {
			t.Errorf("finding field %s missing", n)
		}
	}
}
