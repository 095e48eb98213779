// Package keytable is what a table of dotted configuration keys needs
// whatever configuration it describes: the sections its names make and
// the names each section allows. The agent's table (internal/config) and
// the audit's (audit/config) both walk theirs with it.
package keytable

import (
	"slices"
	"strings"
)

// Sections returns every dotted prefix of names ("kafka", "kafka.tls"), in
// the order the names first make them.
func Sections(names []string) []string {
	var out []string
	for _, n := range names {
		parts := strings.Split(n, ".")
		for i := 1; i < len(parts); i++ {
			s := strings.Join(parts[:i], ".")
			if !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
	}
	return out
}

// IsSection reports whether name is a section of some key of names.
func IsSection(names []string, name string) bool {
	return slices.ContainsFunc(names, func(n string) bool { return strings.HasPrefix(n, name+".") })
}

// Children lists the names allowed directly under section ("" is the top),
// in table order.
func Children(names []string, section string) []string {
	prefix := section + "."
	if section == "" {
		prefix = ""
	}
	var out []string
	for _, n := range names {
		rest, ok := strings.CutPrefix(n, prefix)
		if !ok {
			continue
		}
		child, _, _ := strings.Cut(rest, ".")
		if !slices.Contains(out, child) {
			out = append(out, child)
		}
	}
	return out
}
