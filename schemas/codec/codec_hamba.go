package codec

import (
	"errors"
	"fmt"
	"io"
	"reflect"

	"github.com/hamba/avro/v2"
)

// This file and versioned.go are the only ones that import hamba/avro/v2
// (registry.go uses its registry client package): the library is
// unmaintained upstream (its README, 2026-01), and replacing it means
// rewriting bodyCodec here, the audit records' marshalling there and the
// two client calls in registry.go, nothing else (TestHambaConfined).

// bodyCodec reads the Avro binary body of one record, without any framing,
// for one writer schema. (Encoding is eventwriter.go's: see why there.)
type bodyCodec struct {
	schema avro.Schema
}

// newBodyCodec compiles schemaJSON, which must be a record schema. It
// parses into a private cache so that two versions of the same named record
// never meet in hamba's process-wide DefaultSchemaCache.
func newBodyCodec(schemaJSON []byte) (*bodyCodec, error) {
	s, err := avro.ParseBytesWithCache(schemaJSON, "", &avro.SchemaCache{})
	if err != nil {
		return nil, fmt.Errorf("parse avro schema: %w", err)
	}
	if _, ok := s.(*avro.RecordSchema); !ok {
		return nil, fmt.Errorf("avro schema is a %s, want a record", s.Type())
	}
	return &bodyCodec{schema: s}, nil
}

// name is the record's full name.
func (c *bodyCodec) name() string { return c.schema.(*avro.RecordSchema).FullName() }

// decodeBody reads one record from body, which must hold exactly one.
// Values are Go natives: string, int, int64, bool, float32, float64, []byte,
// time.Time for timestamps, nested []Field for records.
func (c *bodyCodec) decodeBody(body []byte) ([]Field, error) {
	r := avro.NewReader(nil, 0).Reset(body)
	v := r.ReadNext(c.schema)
	if r.Error != nil {
		return nil, fmt.Errorf("avro decode: %w", r.Error)
	}
	// Peek reports io.EOF only when every byte was used: trailing bytes mean
	// the body was written with another schema.
	r.Peek()
	if !errors.Is(r.Error, io.EOF) {
		return nil, fmt.Errorf("avro decode: bytes left over after the record in a %d-byte body (written with another schema?)", len(body))
	}
	return plain(c.schema, v).([]Field), nil
}

// plain turns hamba's generic value for schema s into the package's own
// shapes: records become []Field in schema order and union values lose
// their {"<branch>": v} wrapping, so nothing outside this file depends on
// how hamba represents them.
func plain(s avro.Schema, v any) any {
	switch s := s.(type) {
	case *avro.RefSchema:
		return plain(s.Schema(), v)
	case *avro.RecordSchema:
		m, _ := v.(map[string]any)
		out := make([]Field, 0, len(s.Fields()))
		for _, f := range s.Fields() {
			out = append(out, Field{Name: f.Name(), Value: plain(f.Type(), m[f.Name()])})
		}
		return out
	case *avro.UnionSchema:
		m, ok := v.(map[string]any)
		if !ok {
			return v // nil: the null branch
		}
		for key, inner := range m {
			for _, branch := range s.Types() {
				if unionKey(branch) == key {
					return plain(branch, inner)
				}
			}
		}
		return v
	case *avro.ArraySchema:
		items, _ := v.([]any)
		for i := range items {
			items[i] = plain(s.Items(), items[i])
		}
		return items
	case *avro.MapSchema:
		m, _ := v.(map[string]any)
		for k := range m {
			m[k] = plain(s.Values(), m[k])
		}
		return m
	case *avro.FixedSchema:
		// hamba returns a [size]byte array; a slice is what JSON and callers want.
		rv := reflect.ValueOf(v)
		if rv.Kind() == reflect.Array {
			b := make([]byte, rv.Len())
			reflect.Copy(reflect.ValueOf(b), rv)
			return b
		}
		return v
	default:
		return v
	}
}

// unionKey is the name hamba's generic reader keys a union value by.
func unionKey(s avro.Schema) string {
	if ref, ok := s.(*avro.RefSchema); ok {
		s = ref.Schema()
	}
	if n, ok := s.(avro.NamedSchema); ok {
		return n.FullName()
	}
	name := string(s.Type())
	if l, ok := s.(avro.LogicalTypeSchema); ok && l.Logical() != nil {
		name += "." + string(l.Logical().Type())
	}
	return name
}
