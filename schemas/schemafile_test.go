package schemas_test

import (
	"encoding/json"
	"iter"
	"reflect"
	"testing"

	"github.com/bindwatch/bindwatch/schemas"
)

// schemaFile is a BindEvent .avsc read as plain JSON, so the rules are
// checked on the file as written rather than on a library's reading of it.
type schemaFile struct {
	Type      string
	Name      string
	Namespace string
	Doc       string
	Fields    []map[string]json.RawMessage
}

func loadSchema(t *testing.T, v int) (string, schemaFile) {
	t.Helper()
	text, err := schemas.BindEventSchema(v)
	if err != nil {
		t.Fatal(err)
	}
	var f schemaFile
	if err := json.Unmarshal([]byte(text), &f); err != nil {
		t.Fatalf("v%d: %v", v, err)
	}
	return text, f
}

func fieldName(t *testing.T, f map[string]json.RawMessage) string {
	t.Helper()
	var name string
	if err := json.Unmarshal(f["name"], &name); err != nil {
		t.Fatalf("field %s: name: %v", f["name"], err)
	}
	return name
}

// versions lists 1..Latest.
func versions() []int {
	var vs []int
	for v := 1; v <= schemas.Latest; v++ {
		vs = append(vs, v)
	}
	return vs
}

type goField struct {
	name, tag, goType string
}

// reflectFields yields BindEvent's fields in declaration order.
func reflectFields() iter.Seq[goField] {
	return func(yield func(goField) bool) {
		for f := range reflect.TypeFor[schemas.BindEvent]().Fields() {
			if !yield(goField{name: f.Name, tag: f.Tag.Get("avro"), goType: f.Type.String()}) {
				return
			}
		}
	}
}
