package codec

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Kind is an Avro type's kind as a plan walks it.
type Kind uint8

// The kinds of Avro type.
const (
	KindNull Kind = iota
	KindBoolean
	KindInt
	KindLong
	KindFloat
	KindDouble
	KindBytes
	KindString
	KindUnion
	KindArray
	KindMap
	KindRecord
	KindEnum
	KindFixed
)

var primitiveKinds = map[string]Kind{
	"null": KindNull, "boolean": KindBoolean, "int": KindInt, "long": KindLong,
	"float": KindFloat, "double": KindDouble, "bytes": KindBytes, "string": KindString,
}

// Type is one Avro type of a compiled schema: the plan every reader and
// writer of bindwatch's records walks. A record's plan is its Fields in
// schema order; a named type mentioned again is the same *Type.
type Type struct {
	Kind     Kind
	Name     string // record, enum and fixed: the name as written
	Logical  string // logicalType, "" for none
	Size     int    // fixed
	Items    *Type  // array items, map values
	Branches []*Type
	Fields   []RecordField
	Symbols  int // enum: how many
}

// RecordField is one field of a record type.
type RecordField struct {
	Name string
	Type *Type
}

// Compile compiles a schema's text into its plan.
func Compile(text []byte) (*Type, error) {
	var v any
	if err := json.Unmarshal(text, &v); err != nil {
		return nil, fmt.Errorf("parse schema json: %w", err)
	}
	return compileType(v, map[string]*Type{})
}

func compileType(v any, names map[string]*Type) (*Type, error) {
	switch v := v.(type) {
	case string:
		if k, ok := primitiveKinds[v]; ok {
			return &Type{Kind: k}, nil
		}
		if t, ok := names[v]; ok {
			return t, nil
		}
		return nil, fmt.Errorf("unknown type %q", v)
	case []any:
		u := &Type{Kind: KindUnion}
		for _, b := range v {
			t, err := compileType(b, names)
			if err != nil {
				return nil, err
			}
			u.Branches = append(u.Branches, t)
		}
		return u, nil
	case map[string]any:
		logical, _ := v["logicalType"].(string)
		name, _ := v["name"].(string)
		switch v["type"] {
		case "array", "map":
			key, kind := "items", KindArray
			if v["type"] == "map" {
				key, kind = "values", KindMap
			}
			it, err := compileType(v[key], names)
			if err != nil {
				return nil, err
			}
			return &Type{Kind: kind, Items: it}, nil
		case "record", "error":
			t := &Type{Kind: KindRecord, Name: name}
			names[name] = t
			fs, _ := v["fields"].([]any)
			for _, f := range fs {
				fm, _ := f.(map[string]any)
				fname, _ := fm["name"].(string)
				ft, err := compileType(fm["type"], names)
				if err != nil {
					return nil, fmt.Errorf("field %q: %w", fname, err)
				}
				t.Fields = append(t.Fields, RecordField{Name: fname, Type: ft})
			}
			return t, nil
		case "enum":
			syms, _ := v["symbols"].([]any)
			t := &Type{Kind: KindEnum, Name: name, Symbols: len(syms)}
			names[name] = t
			return t, nil
		case "fixed":
			size, _ := v["size"].(float64)
			t := &Type{Kind: KindFixed, Name: name, Size: int(size), Logical: logical}
			names[name] = t
			return t, nil
		}
		// {"type":"long","logicalType":...}: the primitive, annotated.
		t, err := compileType(v["type"], names)
		if err != nil {
			return nil, err
		}
		if logical != "" {
			c := *t
			c.Logical = logical
			t = &c
		}
		return t, nil
	}
	return nil, fmt.Errorf("unreadable type %v", v)
}

// Equal says whether t and u are written with the same bytes and mean the
// same: kinds, logical types, names, sizes and, in order, fields and
// branches.
func (t *Type) Equal(u *Type) bool {
	return t.equal(u, map[[2]*Type]bool{})
}

func (t *Type) equal(u *Type, seen map[[2]*Type]bool) bool {
	if t == u {
		return true
	}
	if seen[[2]*Type{t, u}] { // a recursive record already being compared
		return true
	}
	seen[[2]*Type{t, u}] = true
	if t.Kind != u.Kind || t.Logical != u.Logical || t.Name != u.Name || t.Size != u.Size ||
		t.Symbols != u.Symbols || len(t.Branches) != len(u.Branches) || len(t.Fields) != len(u.Fields) {
		return false
	}
	if (t.Items == nil) != (u.Items == nil) || t.Items != nil && !t.Items.equal(u.Items, seen) {
		return false
	}
	for i := range t.Branches {
		if !t.Branches[i].equal(u.Branches[i], seen) {
			return false
		}
	}
	for i := range t.Fields {
		if t.Fields[i].Name != u.Fields[i].Name || !t.Fields[i].Type.equal(u.Fields[i].Type, seen) {
			return false
		}
	}
	return true
}

var kindNames = [...]string{"null", "boolean", "int", "long", "float", "double", "bytes", "string",
	"union", "array", "map", "record", "enum", "fixed"}

// String is t as schema text, in short and without logical types, for
// error messages: "int", ["null","string"], {"type":"array","items":"Holder"}.
func (t *Type) String() string {
	switch t.Kind {
	case KindUnion:
		names := make([]string, len(t.Branches))
		for i, b := range t.Branches {
			names[i] = b.String()
		}
		return "[" + strings.Join(names, ",") + "]"
	case KindArray:
		return `{"type":"array","items":` + t.Items.String() + "}"
	case KindMap:
		return `{"type":"map","values":` + t.Items.String() + "}"
	case KindRecord, KindEnum, KindFixed:
		return `"` + t.Name + `"`
	}
	return `"` + kindNames[t.Kind] + `"`
}

// Describe is t as String has it, then its logical type (or its branch's)
// in brackets: "long" (timestamp-micros).
func (t *Type) Describe() string {
	logical := t.Logical
	for _, b := range t.Branches {
		if b.Logical != "" {
			logical = b.Logical
		}
	}
	if logical == "" {
		return t.String()
	}
	return t.String() + " (" + logical + ")"
}
