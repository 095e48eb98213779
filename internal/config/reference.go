package config

import (
	"fmt"
	"strings"
)

// Reference is the configuration reference as a Markdown table, built from
// the key table so docs/operating.md cannot drift from it: each key, its default
// as the file would spell it, its environment variable, and what it does.
func Reference() string {
	var b strings.Builder
	b.WriteString("| key | default | environment | meaning |\n|---|---|---|---|\n")
	d := Defaults()
	for _, k := range keys {
		def := textOf(k, &d)
		if list, ok := valueOf(k, &d).([]string); ok {
			def = "[" + strings.Join(list, ", ") + "]"
		}
		if def == "" {
			def = `""`
		}
		fmt.Fprintf(&b, "| `%s` | `%s` | `%s` | %s |\n", k.name, def, EnvName(k.name), k.help)
	}
	return b.String()
}
