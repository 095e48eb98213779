package siem

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// ecsDefs is testdata/ecs-*.txt: ECS's definitions of the fields we emit.
type ecsDefs struct {
	fields   map[string]ecsField
	allowed  map[string][]string
	expected map[string][]string // event.category value → event.type values
}

type ecsField struct {
	typ   string
	array bool
}

func loadECS(t *testing.T, path string) *ecsDefs {
	t.Helper()
	d := &ecsDefs{fields: map[string]ecsField{}, allowed: map[string][]string{}, expected: map[string][]string{}}
	for _, w := range lines(t, path) {
		switch w[0] {
		case "field":
			d.fields[w[1]] = ecsField{typ: w[2], array: len(w) > 3 && w[3] == "array"}
		case "allowed":
			d.allowed[w[1]] = w[2:]
		case "expected":
			d.expected[w[1]] = w[2:]
		default:
			t.Fatalf("%s: %v", path, w)
		}
	}
	return d
}

func lines(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out [][]string
	s := bufio.NewScanner(f)
	for s.Scan() {
		line := strings.TrimSpace(s.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, strings.Fields(line))
	}
	return out
}

// asJSON is doc as a consumer reads it: through JSON, numbers exact.
func asJSON(t *testing.T, doc map[string]any) map[string]any {
	t.Helper()
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.UseNumber()
	var out map[string]any
	if err := dec.Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

// flatten lists doc's leaves by dotted path; the custom prefix's object is
// one leaf per field of the record.
func flatten(prefix string, v any, out map[string]any) {
	m, ok := v.(map[string]any)
	if !ok || prefix == ECSPrefix {
		out[prefix] = v
		return
	}
	for k, x := range m {
		p := k
		if prefix != "" {
			p = prefix + "." + k
		}
		flatten(p, x, out)
	}
}

// checkECS checks every field of doc against ECS: known, of its type,
// arrays only where ECS has them, categorization values allowed and
// compatible; custom fields only under the prefix, each named as a field
// of the record. It returns the fields it saw.
func checkECS(t *testing.T, defs *ecsDefs, what string, doc map[string]any, avroFields []string) []string {
	t.Helper()
	leaves := map[string]any{}
	flatten("", asJSON(t, doc), leaves)
	var seen []string
	for name, v := range leaves {
		seen = append(seen, name)
		if name == ECSPrefix {
			for k := range v.(map[string]any) {
				if !slices.Contains(avroFields, k) {
					t.Errorf("%s: %s.%s is not a field of the record", what, ECSPrefix, k)
				}
				seen = append(seen, ECSPrefix+"."+k)
			}
			continue
		}
		def, ok := defs.fields[name]
		if !ok {
			t.Errorf("%s: %s is not an ECS field (testdata) and not under %s.", what, name, ECSPrefix)
			continue
		}
		vals := []any{v}
		if arr, isArr := v.([]any); isArr {
			if !def.array {
				t.Errorf("%s: %s is an array; ECS's is not", what, name)
			}
			vals = arr
		}
		for _, x := range vals {
			if err := ecsType(def.typ, x); err != nil {
				t.Errorf("%s: %s = %v: %v", what, name, x, err)
			}
			if allowed, ok := defs.allowed[name]; ok && !slices.Contains(allowed, fmt.Sprint(x)) {
				t.Errorf("%s: %s = %v, ECS allows %v", what, name, x, allowed)
			}
		}
	}
	cats, _ := leaves["event.category"].([]any)
	types, _ := leaves["event.type"].([]any)
	for _, c := range cats {
		for _, ty := range types {
			if !slices.Contains(defs.expected[c.(string)], ty.(string)) {
				t.Errorf("%s: event.type %v is not expected with event.category %v (ECS: %v)", what, ty, c, defs.expected[c.(string)])
			}
		}
	}
	sort.Strings(seen)
	return seen
}

func ecsType(typ string, v any) error {
	switch typ {
	case "keyword", "match_only_text":
		if _, ok := v.(string); !ok {
			return fmt.Errorf("a %T, ECS's %s is a string", v, typ)
		}
	case "long":
		n, ok := v.(json.Number)
		if _, err := n.Int64(); !ok || err != nil {
			return fmt.Errorf("not a long")
		}
	case "ip":
		s, _ := v.(string)
		if _, err := netip.ParseAddr(s); err != nil {
			return fmt.Errorf("not an ip: %v", err)
		}
	case "date":
		s, _ := v.(string)
		if _, err := time.Parse(time.RFC3339Nano, s); err != nil {
			return fmt.Errorf("not a date: %v", err)
		}
	default:
		return fmt.Errorf("type %s: teach the test", typ)
	}
	return nil
}

// ocsfDefs is testdata/ocsf-*.txt.
type ocsfDefs struct {
	types  map[string]ocsfType
	scopes map[string]*ocsfScope // "class:x", "object:x"
}

type ocsfType struct {
	base    string
	lo, hi  int64
	maxLen  int
	hasRang bool
}

type ocsfScope struct {
	uid, category int
	attrs         map[string]ocsfAttr
	atLeastOne    [][]string
}

type ocsfAttr struct {
	typ      string
	array    bool
	required bool
	enum     []string
}

func loadOCSF(t *testing.T, path string) *ocsfDefs {
	t.Helper()
	d := &ocsfDefs{types: map[string]ocsfType{}, scopes: map[string]*ocsfScope{}}
	var cur *ocsfScope
	for _, w := range lines(t, path) {
		switch w[0] {
		case "type":
			ty := ocsfType{base: w[2]}
			for i := 3; i < len(w); i++ {
				switch w[i] {
				case "range":
					ty.lo, _ = strconv.ParseInt(w[i+1], 10, 64)
					ty.hi, _ = strconv.ParseInt(w[i+2], 10, 64)
					ty.hasRang = true
					i += 2
				case "max_len":
					ty.maxLen, _ = strconv.Atoi(w[i+1])
					i++
				}
			}
			d.types[w[1]] = ty
		case "class":
			cur = &ocsfScope{attrs: map[string]ocsfAttr{}}
			cur.uid, _ = strconv.Atoi(w[2])
			cur.category, _ = strconv.Atoi(w[3])
			d.scopes["class:"+w[1]] = cur
		case "object":
			cur = &ocsfScope{attrs: map[string]ocsfAttr{}}
			d.scopes["object:"+w[1]] = cur
		case "attr":
			a := ocsfAttr{typ: w[2]}
			for i := 3; i < len(w); i++ {
				switch w[i] {
				case "array":
					a.array = true
				case "required":
					a.required = true
				case "enum":
					a.enum = w[i+1:]
					i = len(w)
				}
			}
			cur.attrs[w[1]] = a
		case "at_least_one":
			cur.atLeastOne = append(cur.atLeastOne, w[1:])
		default:
			t.Fatalf("%s: %v", path, w)
		}
	}
	return d
}

// checkOCSF checks obj against scope: every attribute known and of its
// type, enums, required attributes present, at_least_one constraints. It
// returns the attributes it saw, as "scope name".
func checkOCSF(t *testing.T, d *ocsfDefs, what, scope string, obj map[string]any, at string) []string {
	t.Helper()
	s, ok := d.scopes[scope]
	if !ok {
		t.Fatalf("%s: no %s in the OCSF test data", what, scope)
	}
	var seen []string
	for name, a := range s.attrs {
		if _, ok := obj[name]; a.required && !ok {
			t.Errorf("%s: %s%s is required by OCSF (%s) and missing", what, at, name, scope)
		}
	}
	for _, group := range s.atLeastOne {
		if !slices.ContainsFunc(group, func(n string) bool { _, ok := obj[n]; return ok }) {
			t.Errorf("%s: %s: OCSF wants at least one of %v", what, strings.TrimSuffix(at, "."), group)
		}
	}
	for name, v := range obj {
		path := at + name
		seen = append(seen, scope+" "+name)
		a, ok := s.attrs[name]
		if !ok {
			t.Errorf("%s: %s is not an attribute of %s (testdata)", what, path, scope)
			continue
		}
		vals := []any{v}
		if arr, isArr := v.([]any); isArr != a.array {
			t.Errorf("%s: %s: array %v, OCSF says %v", what, path, isArr, a.array)
			continue
		} else if isArr {
			vals = arr
		}
		for _, x := range vals {
			if obj, ok := strings.CutPrefix(a.typ, "object:"); ok {
				m, isObj := x.(map[string]any)
				if !isObj {
					t.Errorf("%s: %s is a %T, OCSF's is the object %s", what, path, x, obj)
					continue
				}
				seen = append(seen, checkOCSF(t, d, what, "object:"+obj, m, path+".")...)
				continue
			}
			if err := d.checkType(a.typ, x); err != nil {
				t.Errorf("%s: %s = %v: %v", what, path, x, err)
			}
			if a.enum != nil && !slices.Contains(a.enum, fmt.Sprint(x)) {
				t.Errorf("%s: %s = %v, OCSF's enum is %v", what, path, x, a.enum)
			}
		}
	}
	return seen
}

var uuidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

func (d *ocsfDefs) checkType(name string, v any) error {
	ty, ok := d.types[name]
	if !ok {
		return fmt.Errorf("type %s not in the test data", name)
	}
	switch ty.base {
	case "string_t":
		s, ok := v.(string)
		if !ok {
			return fmt.Errorf("a %T, OCSF's %s is a string", v, name)
		}
		if ty.maxLen > 0 && len(s) > ty.maxLen {
			return fmt.Errorf("longer than %s's %d", name, ty.maxLen)
		}
		switch name {
		case "ip_t":
			if _, err := netip.ParseAddr(s); err != nil {
				return err
			}
		case "uuid_t":
			if !uuidRE.MatchString(s) {
				return fmt.Errorf("not a uuid")
			}
		}
	case "integer_t", "long_t":
		n, ok := v.(json.Number)
		i, err := n.Int64()
		if !ok || err != nil {
			return fmt.Errorf("not an integer")
		}
		if ty.base == "integer_t" && (i < math.MinInt32 || i > math.MaxInt32) {
			return fmt.Errorf("out of integer_t's 32 bits")
		}
		if ty.hasRang && (i < ty.lo || i > ty.hi) {
			return fmt.Errorf("out of %s's range %d..%d", name, ty.lo, ty.hi)
		}
		if name == "timestamp_t" && (i < 1e12 || i > 1e13) {
			return fmt.Errorf("not milliseconds since the epoch")
		}
	case "boolean_t":
		if _, ok := v.(bool); !ok {
			return fmt.Errorf("not a boolean")
		}
	case "json_t":
	default:
		return fmt.Errorf("base type %s: teach the test", ty.base)
	}
	return nil
}
