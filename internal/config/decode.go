package config

import (
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// want describes what a kind accepts, for messages about the wrong type.
func (k kind) want() string {
	switch k {
	case kindBool:
		return "true or false"
	case kindInt:
		return "an integer"
	case kindDuration:
		return "a duration (e.g. 50ms, 1s)"
	case kindSize:
		return "a size (bytes, or e.g. 512MiB, 1GB)"
	case kindList:
		return "a list"
	case kindPorts:
		return "a list of ports 1-65535"
	default:
		return "a string"
	}
}

// decode sets k's field in c from raw, which is what a layer produced: YAML
// scalars and lists, environment text, flag text or string lists, or the
// defaults' own values. Text is accepted for every kind, so the environment
// and flags need no typing of their own.
func decode(k key, raw any, c *Config) *FieldError {
	switch raw.(type) {
	case nil:
		empty := `write "" for empty`
		if k.kind == kindList || k.kind == kindPorts {
			empty = "write [] for none"
		}
		return fieldErr(k.name, "null is not allowed; want %s (%s, or remove the key for the default)", k.kind.want(), empty)
	case map[string]any:
		return fieldErr(k.name, "a map is not allowed; want %s", k.kind.want())
	}
	field := reflect.ValueOf(k.field(c)).Elem()
	switch k.kind {
	case kindString:
		s, ok := raw.(string)
		if !ok {
			n, isInt := asInt(raw)
			if !isInt {
				return wrongType(k, raw, "is not a string (quote it in YAML)")
			}
			s = strconv.FormatInt(n, 10)
		}
		field.SetString(s)
	case kindBool:
		b, ok := raw.(bool)
		if s, isText := raw.(string); isText {
			var err error
			b, err = strconv.ParseBool(strings.TrimSpace(s))
			ok = err == nil
		}
		if !ok {
			return wrongType(k, raw, "is not a bool (want true or false)")
		}
		field.SetBool(b)
	case kindInt:
		n, ok := asInt(raw)
		if s, isText := raw.(string); isText {
			var err error
			n, err = strconv.ParseInt(strings.TrimSpace(s), 10, 64)
			ok = err == nil
		}
		if !ok || field.OverflowInt(n) {
			return wrongType(k, raw, "is not an integer")
		}
		field.SetInt(n)
	case kindDuration:
		s, ok := raw.(string)
		d, err := time.ParseDuration(strings.TrimSpace(s))
		if !ok || err != nil {
			return wrongType(k, raw, "is not a duration (want e.g. 50ms, 1s)")
		}
		field.SetInt(int64(d))
	case kindSize:
		n, ok := asInt(raw)
		if s, isText := raw.(string); isText {
			var err error
			n, err = parseSize(s)
			ok = err == nil
		}
		if !ok || n < 0 {
			return wrongType(k, raw, "is not a size (want bytes or e.g. 512MiB, 1GB)")
		}
		field.SetInt(n)
	case kindList:
		items, bad := listItems(raw)
		if bad != nil {
			return wrongType(k, bad, "is not allowed in a list of strings")
		}
		if len(items) == 0 {
			items = nil
		}
		field.Set(reflect.ValueOf(items))
	case kindPorts:
		items, bad := listItems(raw)
		if bad != nil {
			return wrongType(k, bad, "is not a port (want 1-65535)")
		}
		var ports []uint16
		for _, s := range items {
			n, err := strconv.ParseUint(s, 10, 16)
			if err != nil {
				return fieldErr(k.name, "%q is not a port (want 1-65535)", s)
			}
			ports = append(ports, uint16(n))
		}
		field.Set(reflect.ValueOf(ports))
	}
	return nil
}

func wrongType(k key, raw any, problem string) *FieldError {
	if _, isList := raw.([]any); isList && k.kind != kindList && k.kind != kindPorts {
		return fieldErr(k.name, "a list is not allowed; want %s", k.kind.want())
	}
	return fieldErr(k.name, "%s %s", quote(raw), problem)
}

// asInt accepts the integer types YAML decoding and the defaults produce.
func asInt(raw any) (int64, bool) {
	switch v := raw.(type) {
	case int:
		return int64(v), true
	case int64:
		return v, true
	case uint64:
		if v > math.MaxInt64 {
			return 0, false
		}
		return int64(v), true
	}
	return 0, false
}

// listItems flattens a list value to its items as text: a YAML list of
// scalars, a []string from flags or defaults, or comma-separated text from
// the environment. Blank items are dropped so a trailing comma is harmless.
// bad is the first item that is not a scalar.
func listItems(raw any) (items []string, bad any) {
	var in []any
	switch v := raw.(type) {
	case string:
		for _, s := range strings.Split(v, ",") {
			in = append(in, s)
		}
	case []string:
		for _, s := range v {
			in = append(in, s)
		}
	case []any:
		in = v
	case int, int64, uint64:
		in = []any{v}
	default:
		return nil, raw
	}
	for _, e := range in {
		var s string
		switch e := e.(type) {
		case string:
			s = strings.TrimSpace(e)
		case int, int64, uint64:
			n, ok := asInt(e)
			if !ok {
				return nil, e
			}
			s = strconv.FormatInt(n, 10)
		default:
			return nil, e
		}
		if s != "" {
			items = append(items, s)
		}
	}
	return items, nil
}

// valueOf is k's value in c as the defaults layer and LogValue present it:
// the same text a user would write in the file.
func valueOf(k key, c *Config) any {
	field := reflect.ValueOf(k.field(c)).Elem()
	switch k.kind {
	case kindBool:
		return field.Bool()
	case kindInt:
		return field.Int()
	case kindDuration:
		return time.Duration(field.Int()).String()
	case kindSize:
		return formatSize(field.Int())
	case kindList:
		return append([]string{}, field.Interface().([]string)...)
	case kindPorts:
		ports := field.Interface().([]uint16)
		out := make([]string, len(ports))
		for i, p := range ports {
			out[i] = strconv.Itoa(int(p))
		}
		return out
	default:
		return field.String()
	}
}

// textOf is valueOf as one line of text, lists comma-separated, the way the
// environment and flags write it.
func textOf(k key, c *Config) string {
	switch v := valueOf(k, c).(type) {
	case []string:
		return strings.Join(v, ",")
	case string:
		return v
	default:
		return quote(v)
	}
}
