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

func (e *Error) Error() string { return locate(e.File, e.Line, "", e.Key, e.Problem) }

// Warning is a part of a policy file that loads but likely does not do
// what its author meant. The audit logs it at load and reload; bindwatch
// policy check prints it.
type Warning struct {
	File    string
	Line    int
	Key     string
	Problem string
}

func (w Warning) String() string { return locate(w.File, w.Line, "warning: ", w.Key, w.Problem) }

// locate writes "policy: file:line: [warning: ]key: problem".
func locate(file string, line int, kind, key, problem string) string {
	loc := file
	if line > 0 {
		loc = fmt.Sprintf("%s:%d", file, line)
	}
	if key == "" {
		return fmt.Sprintf("policy: %s: %s%s", loc, kind, problem)
	}
	return fmt.Sprintf("policy: %s: %s%s: %s", loc, kind, key, problem)
}

// quoteList prints the allowed names of an enumeration.
func quoteList(names []string) string {
	return strings.Join(names, ", ")
}
