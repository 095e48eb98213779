// Package siem maps bindwatch's records to the schemas SIEMs ingest: the
// Elastic Common Schema (ECS, ecs.go) and the Open Cybersecurity Schema
// Framework (OCSF, ocsf.go). Its input is a record's Avro fields by name,
// as any version of BindEvent or Finding carries them, so `bindwatch
// consume` (generic records read from Kafka) and the audit (its findings)
// share one mapping. The tables in docs/siem.md say what goes where; a
// field no standard field takes goes under a custom prefix with its Avro
// name (ECS: bindwatch.<name>; OCSF: unmapped.<name>).
package siem

import (
	"net/netip"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/bindwatch/bindwatch/schemas"
)

// Fields is a record's fields by Avro name. Values are what a decoded
// record holds: string, int32 or int64, bool, time.Time, map[string]any or
// map[string]string, []any, or nil for null.
type Fields map[string]any

// FindingFields is a finding record's fields by Avro name (its avro tags).
func FindingFields(f *schemas.Finding) Fields {
	out := Fields{}
	addTagged(out, reflect.ValueOf(f).Elem())
	return out
}

func addTagged(out Fields, v reflect.Value) {
	for i := range v.NumField() {
		sf, fv := v.Type().Field(i), v.Field(i)
		if sf.Anonymous {
			addTagged(out, fv)
			continue
		}
		name := sf.Tag.Get("avro")
		if name == "" {
			continue
		}
		if fv.Kind() == reflect.Pointer {
			if fv.IsNil() {
				out[name] = nil
				continue
			}
			fv = fv.Elem()
		}
		out[name] = fv.Interface()
	}
}

func (f Fields) str(name string) string {
	s, _ := f[name].(string)
	return s
}

func (f Fields) int(name string) (int64, bool) {
	switch v := f[name].(type) {
	case int:
		return int64(v), true
	case int32:
		return int64(v), true
	case int64:
		return v, true
	}
	return 0, false
}

func (f Fields) time(name string) (time.Time, bool) {
	t, ok := f[name].(time.Time)
	return t.UTC(), ok && !t.IsZero()
}

func (f Fields) labels(name string) map[string]string {
	switch m := f[name].(type) {
	case map[string]string:
		return m
	case map[string]any:
		out := make(map[string]string, len(m))
		for k, v := range m {
			out[k], _ = v.(string)
		}
		return out
	}
	return nil
}

// withoutZeros is f without those of names that hold a zero number (a
// finding's pid 0 says "no process", not process 0).
func (f Fields) withoutZeros(names ...string) Fields {
	out := make(Fields, len(f))
	for k, v := range f {
		out[k] = v
	}
	for _, n := range names {
		if v, ok := f.int(n); ok && v == 0 {
			delete(out, n)
		}
	}
	return out
}

// kind is a record's kind; a BindEvent v1 has none and is a bind.
func (f Fields) kind() string {
	if k := f.str("kind"); k != "" {
		return k
	}
	return "bind"
}

// put sets a dotted path in a nested object, skipping empty values.
func put(obj map[string]any, path string, v any) {
	if empty(v) {
		return
	}
	parts := strings.Split(path, ".")
	for _, p := range parts[:len(parts)-1] {
		next, ok := obj[p].(map[string]any)
		if !ok {
			next = map[string]any{}
			obj[p] = next
		}
		obj = next
	}
	obj[parts[len(parts)-1]] = v
}

func empty(v any) bool {
	switch v := v.(type) {
	case nil:
		return true
	case string:
		return v == ""
	case []string:
		return len(v) == 0
	case []any:
		return len(v) == 0
	case map[string]any:
		return len(v) == 0
	case map[string]string:
		return len(v) == 0
	}
	return false
}

// custom returns the fields of f not in mapped, for the custom prefix:
// times as RFC 3339 with microseconds, nulls and empty values left out.
func custom(f Fields, mapped map[string]bool) map[string]any {
	out := map[string]any{}
	for k, v := range f {
		if mapped[k] || empty(v) {
			continue
		}
		if t, ok := v.(time.Time); ok {
			v = t.UTC().Format(timeLayout)
		}
		out[k] = v
	}
	return out
}

const timeLayout = "2006-01-02T15:04:05.000000Z07:00"

// transport is the protocol as ECS's network.transport and OCSF's
// protocol_name spell it (lower case IANA keyword), and its IANA number;
// MPTCP is TCP on the wire.
func transport(proto string) (name string, iana int, ok bool) {
	switch proto {
	case "TCP":
		return "tcp", 6, true
	case "MPTCP":
		return "mptcp", 6, true
	case "UDP":
		return "udp", 17, true
	case "SCTP":
		return "sctp", 132, true
	}
	if n, err := strconv.Atoi(proto); err == nil && n >= 0 && n < 256 {
		return "", n, true
	}
	return "", 0, false
}

// ipVersion is 4 or 6 from the family, 0 when unknown.
func ipVersion(family, addr string) int {
	switch family {
	case "AF_INET":
		return 4
	case "AF_INET6":
		return 6
	}
	if a, err := netip.ParseAddr(addr); err == nil {
		if a.Is4() {
			return 4
		}
		return 6
	}
	return 0
}

func validIP(addr string) bool {
	_, err := netip.ParseAddr(addr)
	return err == nil
}

// podLabels as ECS's orchestrator.resource.label spells them: key:value.
func podLabels(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, k+":"+v)
	}
	slices.Sort(out)
	return out
}

// Severity is a finding's severity, on OCSF's scale (1 Informational, 2
// Low, 3 Medium, 4 High, 5 Critical), which ECS's event.severity takes as
// it is: an unexpected listener is as severe as its exposure, a required
// service that is missing or a blind spot is Medium, a record that does
// not verify (integrity) is High.
func Severity(f Fields) (id int, name string) {
	id = 3
	switch f.str("kind") {
	case "listener", "":
		switch f.str("exposure") {
		case "wildcard":
			id = 4
		case "loopback", "link_local":
			id = 2
		}
	case "integrity":
		id = 4
	}
	return id, severityNames[id]
}

var severityNames = map[int]string{0: "Unknown", 1: "Informational", 2: "Low", 3: "Medium", 4: "High", 5: "Critical"}

// title is a finding in a few words.
func title(f Fields) string {
	where := strings.TrimSpace(f.str("protocol") + " " + endpoint(f.str("addr"), f))
	switch f.str("kind") {
	case "require":
		return "required service missing on " + f.str("host") + ": rule " + f.str("rule")
	case "coverage":
		return "incomplete view of " + f.str("host") + ": " + f.str("reason")
	case "integrity":
		return "records of " + f.str("host") + " do not verify: " + f.str("reason")
	}
	return "unexpected listener " + where + " on " + f.str("host")
}

func endpoint(addr string, f Fields) string {
	port, _ := f.int("port")
	if strings.Contains(addr, ":") {
		addr = "[" + addr + "]"
	}
	return addr + ":" + strconv.FormatInt(port, 10)
}
