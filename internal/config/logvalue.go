package config

import (
	"log/slog"
	"strings"
)

// LogValue presents c as nested groups by section, every key with the
// value the file would spell (durations as 50ms, sizes as 1GiB). Config
// holds no secret (see KafkaSASL.Secret), so everything is shown; the
// password file and variable are where the secret is, not the secret.
func (c Config) LogValue() slog.Value {
	type group struct {
		name  string
		attrs []slog.Attr
	}
	// Keys of a section are contiguous in the table, so one pass builds
	// the groups; a nested section closes into its parent when it ends.
	var stack []group
	push := func(name string) { stack = append(stack, group{name: name}) }
	pop := func() {
		g := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		stack[len(stack)-1].attrs = append(stack[len(stack)-1].attrs, slog.Attr{Key: g.name, Value: slog.GroupValue(g.attrs...)})
	}
	push("")
	var open []string
	for _, k := range keys {
		parts := strings.Split(k.name, ".")
		path, leaf := parts[:len(parts)-1], parts[len(parts)-1]
		common := 0
		for common < len(open) && common < len(path) && open[common] == path[common] {
			common++
		}
		for len(open) > common {
			pop()
			open = open[:len(open)-1]
		}
		for _, p := range path[common:] {
			push(p)
			open = append(open, p)
		}
		stack[len(stack)-1].attrs = append(stack[len(stack)-1].attrs, slog.Any(leaf, valueOf(k, &c)))
	}
	for len(open) > 0 {
		pop()
		open = open[:len(open)-1]
	}
	return slog.GroupValue(stack[0].attrs...)
}

// SlogLevel is log.level as a slog.Level; Validate has checked the name.
func (l Log) SlogLevel() slog.Level {
	switch l.Level {
	case LogDebug:
		return slog.LevelDebug
	case LogWarn:
		return slog.LevelWarn
	case LogError:
		return slog.LevelError
	default:
		return slog.LevelInfo
	}
}
