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

// ApplyLive is what a reload makes of running: a copy with next's values
// of the keys marked live in the table, and the changed keys that are not
// live, in table order. Those keep their running values until a restart,
// so the next reload compares against what really runs.
func ApplyLive(running, next *Config) (applied *Config, ignored []string) {
	out := *running
	for _, k := range keys {
		if reflect.DeepEqual(valueOf(k, running), valueOf(k, next)) {
			continue
		}
		if !k.live {
			ignored = append(ignored, k.name)
			continue
		}
		reflect.ValueOf(k.field(&out)).Elem().Set(reflect.ValueOf(k.field(next)).Elem())
	}
	return &out, ignored
}
