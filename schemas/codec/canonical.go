package codec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// primitiveNames are the Avro primitive types; [PRIMITIVES] writes a schema
// whose type is one of them as the bare quoted name, whatever attributes
// (logicalType among them) came with it.
var primitiveNames = map[string]bool{
	"null": true, "boolean": true, "int": true, "long": true,
	"float": true, "double": true, "bytes": true, "string": true,
}

// CanonicalForm returns the Parsing Canonical Form of an Avro schema as the
// Avro specification defines it (PRIMITIVES, FULLNAMES, STRIP, ORDER,
// STRINGS, INTEGERS, WHITESPACE).
//
// It is written here rather than taken from a library because the libraries
// at hand disagree with the specification on logical types: hamba/avro keeps
// logicalType and python3-avro 1.11 keeps {"type":"long"}, while the spec
// (and Java's SchemaNormalization) reduce {"type":"long","logicalType":...}
// to "long". Fingerprints of the two forms differ, so a consumer following
// the spec would not find our schema.
func CanonicalForm(schemaJSON []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(schemaJSON))
	dec.UseNumber() // [INTEGERS] needs the literal, not a float64
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("parse schema json: %w", err)
	}
	if _, err := dec.Token(); err == nil {
		return nil, errors.New("parse schema json: trailing data after the schema")
	}
	c := canonicalizer{defined: map[string]bool{}}
	if err := c.schema(v, ""); err != nil {
		return nil, fmt.Errorf("canonical form: %w", err)
	}
	return c.out, nil
}

// canonicalizer writes one schema's canonical form. defined holds the
// fullnames seen so far: a later mention of one is a reference and is
// written as its quoted fullname.
type canonicalizer struct {
	out     []byte
	defined map[string]bool
}

func (c *canonicalizer) schema(v any, namespace string) error {
	switch s := v.(type) {
	case string:
		return c.reference(s, namespace)
	case []any:
		return c.union(s, namespace)
	case map[string]any:
		return c.object(s, namespace)
	default:
		return fmt.Errorf("a schema must be a string, array or object, got %T", v)
	}
}

// reference writes a primitive name or a reference to a named type,
// resolved to its fullname [FULLNAMES].
func (c *canonicalizer) reference(name, namespace string) error {
	if primitiveNames[name] {
		c.str(name)
		return nil
	}
	full := fullName(name, namespace)
	if !c.defined[full] {
		return fmt.Errorf("reference to undefined type %q", full)
	}
	c.str(full)
	return nil
}

func (c *canonicalizer) union(branches []any, namespace string) error {
	c.out = append(c.out, '[')
	for i, b := range branches {
		if i > 0 {
			c.out = append(c.out, ',')
		}
		if err := c.schema(b, namespace); err != nil {
			return fmt.Errorf("union branch %d: %w", i, err)
		}
	}
	c.out = append(c.out, ']')
	return nil
}

func (c *canonicalizer) object(m map[string]any, namespace string) error {
	typ, ok := m["type"].(string)
	if !ok {
		return fmt.Errorf("schema object without a string \"type\": %v", m["type"])
	}
	switch typ {
	case "record", "error":
		return c.record(typ, m, namespace)
	case "enum":
		return c.enum(m, namespace)
	case "fixed":
		return c.fixed(m, namespace)
	case "array":
		c.out = append(c.out, `{"type":"array","items":`...)
		if err := c.schema(m["items"], namespace); err != nil {
			return fmt.Errorf("array items: %w", err)
		}
		c.out = append(c.out, '}')
		return nil
	case "map":
		c.out = append(c.out, `{"type":"map","values":`...)
		if err := c.schema(m["values"], namespace); err != nil {
			return fmt.Errorf("map values: %w", err)
		}
		c.out = append(c.out, '}')
		return nil
	default:
		// A primitive with attributes, or {"type":"SomeName"}: [PRIMITIVES]
		// and [STRIP] leave only the name.
		return c.reference(typ, namespace)
	}
}

// define writes the opening {"name":"<fullname>","type":"<typ>" of a named
// type and returns the namespace its children inherit.
func (c *canonicalizer) define(typ string, m map[string]any, namespace string) (string, error) {
	name, ok := m["name"].(string)
	if !ok || name == "" {
		return "", fmt.Errorf("%s without a name", typ)
	}
	if ns, ok := m["namespace"].(string); ok && !strings.Contains(name, ".") {
		namespace = ns
	}
	full := fullName(name, namespace)
	if primitiveNames[full] {
		return "", fmt.Errorf("%s may not be named after the primitive %q", typ, full)
	}
	if c.defined[full] {
		return "", fmt.Errorf("type %q defined twice", full)
	}
	// Defined before its fields are walked: a record may refer to itself.
	c.defined[full] = true
	c.out = append(c.out, `{"name":`...)
	c.str(full)
	c.out = append(c.out, `,"type":`...)
	c.str(typ)
	inner := ""
	if i := strings.LastIndexByte(full, '.'); i >= 0 {
		inner = full[:i]
	}
	return inner, nil
}

func (c *canonicalizer) record(typ string, m map[string]any, namespace string) error {
	inner, err := c.define(typ, m, namespace)
	if err != nil {
		return err
	}
	fields, ok := m["fields"].([]any)
	if !ok {
		return fmt.Errorf("record %s without a fields array", m["name"])
	}
	c.out = append(c.out, `,"fields":[`...)
	for i, f := range fields {
		fm, ok := f.(map[string]any)
		if !ok {
			return fmt.Errorf("record %s field %d is not an object", m["name"], i)
		}
		fname, ok := fm["name"].(string)
		if !ok {
			return fmt.Errorf("record %s field %d without a name", m["name"], i)
		}
		if i > 0 {
			c.out = append(c.out, ',')
		}
		c.out = append(c.out, `{"name":`...)
		c.str(fname)
		c.out = append(c.out, `,"type":`...)
		if err := c.schema(fm["type"], inner); err != nil {
			return fmt.Errorf("field %s: %w", fname, err)
		}
		c.out = append(c.out, '}')
	}
	c.out = append(c.out, "]}"...)
	return nil
}

func (c *canonicalizer) enum(m map[string]any, namespace string) error {
	if _, err := c.define("enum", m, namespace); err != nil {
		return err
	}
	symbols, ok := m["symbols"].([]any)
	if !ok {
		return fmt.Errorf("enum %s without a symbols array", m["name"])
	}
	c.out = append(c.out, `,"symbols":[`...)
	for i, s := range symbols {
		sym, ok := s.(string)
		if !ok {
			return fmt.Errorf("enum %s symbol %d is not a string", m["name"], i)
		}
		if i > 0 {
			c.out = append(c.out, ',')
		}
		c.str(sym)
	}
	c.out = append(c.out, "]}"...)
	return nil
}

func (c *canonicalizer) fixed(m map[string]any, namespace string) error {
	if _, err := c.define("fixed", m, namespace); err != nil {
		return err
	}
	// [INTEGERS]: the size may arrive quoted or zero-padded; the canonical
	// form is the bare decimal.
	var lit string
	switch s := m["size"].(type) {
	case json.Number:
		lit = s.String()
	case string:
		lit = s
	default:
		return fmt.Errorf("fixed %s without an integer size", m["name"])
	}
	size, err := strconv.ParseUint(lit, 10, 31)
	if err != nil {
		return fmt.Errorf("fixed %s size %q: %w", m["name"], lit, err)
	}
	c.out = append(c.out, `,"size":`...)
	c.out = strconv.AppendUint(c.out, size, 10)
	c.out = append(c.out, '}')
	return nil
}

// str writes a JSON string literal with every character as itself in UTF-8
// [STRINGS]; only what JSON cannot carry raw is escaped. Valid Avro names
// and symbols never need that.
func (c *canonicalizer) str(s string) {
	c.out = append(c.out, '"')
	for i := 0; i < len(s); i++ {
		switch b := s[i]; {
		case b == '"' || b == '\\':
			c.out = append(c.out, '\\', b)
		case b < 0x20:
			c.out = append(c.out, fmt.Sprintf(`\u%04x`, b)...)
		default:
			c.out = append(c.out, b)
		}
	}
	c.out = append(c.out, '"')
}

// fullName applies the specification's naming rules: a dotted name is
// already full, otherwise the enclosing namespace (possibly empty) is
// prepended.
func fullName(name, namespace string) string {
	if strings.Contains(name, ".") || namespace == "" {
		return name
	}
	return namespace + "." + name
}
