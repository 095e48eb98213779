package policy

import (
	"fmt"
	"strings"
)

// Error is one refused part of a policy file: where it is and what is wrong.
type Error struct {
	File    string
	Line    int
	Key     string // the path to the key, rules[2].match.port
	Problem string
}

func (e *Error) Error() string {
	loc := e.File
	if e.Line > 0 {
		loc = fmt.Sprintf("%s:%d", e.File, e.Line)
	}
	if e.Key == "" {
		return fmt.Sprintf("policy: %s: %s", loc, e.Problem)
	}
	return fmt.Sprintf("policy: %s: %s: %s", loc, e.Key, e.Problem)
}

// quoteList prints the allowed names of an enumeration.
func quoteList(names []string) string {
	return strings.Join(names, ", ")
}
