package config

import (
	"fmt"
	"strings"
)

// FieldError is one refused key. Load and Validate return every FieldError
// they find together, joined with errors.Join, so one start reports all of
// a file's mistakes.
type FieldError struct {
	// Key is the dotted key, or a section for problems spanning its keys.
	Key string
	// Problem says what is wrong and what is allowed.
	Problem string
	// Source says which layer set the value ("set in FILE", "set by
	// BINDWATCH_X", "set by --x"); empty for defaults and for Validate,
	// which sees only the merged Config.
	Source string
}

func (e *FieldError) Error() string {
	s := "config: " + e.Key + ": " + e.Problem
	if e.Source != "" {
		s += " (" + e.Source + ")"
	}
	return s
}

func fieldErr(key, format string, args ...any) *FieldError {
	return &FieldError{Key: key, Problem: fmt.Sprintf(format, args...)}
}

// oneOf is the "want one of" phrase of enumerated keys.
func oneOf[S ~string](allowed []S) string {
	return "want one of " + joinValues(allowed)
}

// quote prints a user value for a message: text quoted, so that an empty or
// blank value is visible, everything else as YAML would print it.
func quote(v any) string {
	switch v := v.(type) {
	case string:
		return fmt.Sprintf("%q", v)
	case nil:
		return "null"
	case []any:
		parts := make([]string, len(v))
		for i, e := range v {
			parts[i] = quote(e)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	default:
		return fmt.Sprint(v)
	}
}
