package config

import (
	"fmt"
	"slices"
	"strings"
)

// fileLeaves walks the YAML tree of a config file against the key table and
// returns the values of known keys, flat by dotted key. Unknown keys, and
// scalars where a section belongs, come back as errors naming the file; the
// type of each value is checked later by decode, like every layer's.
//
// The tree is checked before it is merged because koanf flattens maps:
// merged, a map under a string key would turn into unknown sub-keys and a
// typo'd section would vanish among the defaults.
func fileLeaves(tree map[string]any, file string) (map[string]any, []error) {
	leaves := make(map[string]any)
	var errs []error
	source := "in " + file
	var walk func(node map[string]any, section string)
	walk = func(node map[string]any, section string) {
		names := make([]string, 0, len(node))
		for name := range node {
			names = append(names, name)
		}
		slices.Sort(names)
		for _, name := range names {
			full := name
			if section != "" {
				full = section + "." + name
			}
			v := node[name]
			if _, ok := lookupKey(full); ok {
				if _, twice := leaves[full]; twice {
					// Spelt both dotted and nested: which one wins would
					// depend on map order.
					errs = append(errs, &FieldError{Key: full, Problem: "set twice", Source: source})
				}
				leaves[full] = v
				continue
			}
			if !slices.Contains(sections(), full) {
				e := unknownKey(full, section)
				e.Source = source
				errs = append(errs, e)
				continue
			}
			switch v := v.(type) {
			case map[string]any:
				walk(v, full)
			case nil:
				// An empty section, as in "kafka:" with every key commented
				// out: nothing is set.
			default:
				errs = append(errs, &FieldError{
					Key:     full,
					Problem: fmt.Sprintf("%s is not allowed; want a section with keys %s", quote(v), strings.Join(children(full), ", ")),
					Source:  source,
				})
			}
		}
	}
	walk(tree, "")
	return leaves, errs
}

func unknownKey(full, section string) *FieldError {
	problem := "unknown key"
	if s := suggest(full); s != "" {
		problem += " (did you mean " + s + "?)"
	}
	where := "at the top"
	if section != "" {
		where = "in " + section
	}
	problem += "; allowed " + where + ": " + strings.Join(children(section), ", ")
	return &FieldError{Key: full, Problem: problem}
}
