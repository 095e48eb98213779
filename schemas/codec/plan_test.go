package codec

import (
	"strings"
	"testing"

	"github.com/bindwatch/bindwatch/schemas"
	"github.com/bindwatch/bindwatch/schemas/codec/codectest"
)

// Every BindEvent version compiles, and a field shared by two versions
// has the same plan in both (the versions only add fields).
func TestCompileBindEventVersions(t *testing.T) {
	byName := map[string]*Type{}
	for v := 1; v <= schemas.Latest; v++ {
		plan, err := Compile([]byte(codectest.SchemaText(t, v)))
		if err != nil {
			t.Fatalf("v%d: %v", v, err)
		}
		if plan.Kind != KindRecord || len(plan.Fields) == 0 {
			t.Fatalf("v%d: plan %s with %d fields", v, plan, len(plan.Fields))
		}
		for _, f := range plan.Fields {
			if old, ok := byName[f.Name]; ok && !old.Equal(f.Type) {
				t.Errorf("v%d field %s is %s, was %s", v, f.Name, f.Type.Describe(), old.Describe())
			}
			byName[f.Name] = f.Type
		}
	}
	if got := byName["time"].Describe(); got != `"long" (timestamp-micros)` {
		t.Errorf("time is %s", got)
	}
	if got := byName["holders"].String(); got != `{"type":"array","items":"Holder"}` {
		t.Errorf("holders is %s", got)
	}
}

func TestCompileErrors(t *testing.T) {
	for text, want := range map[string]string{
		`{"type":"record","name":"r","fields":[{"name":"a","type":"Nope"}]}`: `field "a": unknown type "Nope"`,
		`{"type":`: "parse schema json",
	} {
		if _, err := Compile([]byte(text)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Compile(%s) = %v, want %q", text, err, want)
		}
	}
}

// Equal tells types apart by everything that changes the bytes or their
// meaning, and terminates on a recursive record.
func TestTypeEqual(t *testing.T) {
	c := func(s string) *Type {
		t.Helper()
		ty, err := Compile([]byte(s))
		if err != nil {
			t.Fatal(err)
		}
		return ty
	}
	list := `{"type":"record","name":"L","fields":[{"name":"next","type":["null","L"]}]}`
	if !c(list).Equal(c(list)) {
		t.Error("a recursive record differs from itself")
	}
	for _, pair := range [][2]string{
		{`"int"`, `"long"`},
		{`"long"`, `{"type":"long","logicalType":"timestamp-micros"}`},
		{`["null","string"]`, `["string","null"]`},
		{`{"type":"map","values":"string"}`, `{"type":"array","items":"string"}`},
		{`{"type":"fixed","name":"f","size":4}`, `{"type":"fixed","name":"f","size":8}`},
		{`{"type":"record","name":"r","fields":[{"name":"a","type":"int"}]}`, `{"type":"record","name":"r","fields":[{"name":"b","type":"int"}]}`},
	} {
		if c(pair[0]).Equal(c(pair[1])) {
			t.Errorf("%s equals %s", pair[0], pair[1])
		}
	}
}

// Walk reads what the hand writer writes, field by field, and keeps what
// it is asked to keep.
func TestWalkReadsTheWriter(t *testing.T) {
	text := codectest.SchemaText(t, schemas.Latest)
	w, err := newEventWriter([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	ev := codectest.FullEvent()
	body := w.appendBody(nil, ev)
	plan, _ := Compile([]byte(text))
	got := map[string]Value{}
	var in Interner
	b := body
	for _, f := range plan.Fields {
		var v Value
		if b, err = Walk(b, f.Type, &v, true, &in); err != nil {
			t.Fatalf("field %s: %v", f.Name, err)
		}
		got[f.Name] = v
	}
	if len(b) != 0 {
		t.Fatalf("%d bytes left", len(b))
	}
	if string(got["host"].Bytes) != ev.Host || got["seq"].Int != ev.Seq || got["time"].Int != ev.Time.UnixMicro() {
		t.Errorf("scalars: host %q seq %d time %d", got["host"].Bytes, got["seq"].Int, got["time"].Int)
	}
	if len(got["drops"].Keys) != len(ev.Drops) || len(got["drops"].Ints) != len(ev.Drops) {
		t.Errorf("drops: %+v, want %v", got["drops"], ev.Drops)
	}
	for i, k := range got["pod_labels"].Keys {
		if ev.PodLabels[k] != got["pod_labels"].Strs[i] {
			t.Errorf("pod label %s = %q, want %q", k, got["pod_labels"].Strs[i], ev.PodLabels[k])
		}
	}
	if got["container_id"].Null || string(got["container_id"].Bytes) != *ev.ContainerID {
		t.Errorf("container_id %+v", got["container_id"])
	}
	if _, err := Walk(body[:len(body)-1], plan, &Value{}, false, nil); err == nil {
		t.Error("a body cut short walked")
	}
}
