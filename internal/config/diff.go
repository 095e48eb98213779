package config

import "reflect"

// Changed lists the keys whose values differ between a and b, in table
// order: what a reload must apply, or say it cannot.
func Changed(a, b *Config) []string {
	var out []string
	for _, k := range keys {
		if !reflect.DeepEqual(valueOf(k, a), valueOf(k, b)) {
			out = append(out, k.name)
		}
	}
	return out
}
