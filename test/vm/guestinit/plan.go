package main

import (
	"os"
	"strings"
)

// readNULList reads a file of NUL-terminated strings: run.sh writes the
// user's test flags that way so no quoting can change them on the way in.
func readNULList(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parseNULList(string(b)), nil
}

func parseNULList(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(s, "\x00"), "\x00")
}

// baseEnv is what every test binary sees; the capture tests read the hook
// list, and BINDWATCH_REQUIRE_ALL turns their skips into failures.
var baseEnv = []string{
	"PATH=/usr/sbin:/usr/bin:/sbin:/bin",
	"HOME=/tmp",
	"TMPDIR=/tmp",
	"BINDWATCH_IN_VM=1",
	"BINDWATCH_REQUIRE_ALL=1",
	"BINDWATCH_TEST_HOOKS=fexit,kprobe,tracepoint",
}

// testEnv returns baseEnv with overrides (KEY=VALUE) replacing or adding keys.
func testEnv(overrides []string) []string {
	env := append([]string(nil), baseEnv...)
	for _, o := range overrides {
		key, _, ok := strings.Cut(o, "=")
		if !ok {
			continue
		}
		replaced := false
		for i, e := range env {
			if strings.HasPrefix(e, key+"=") {
				env[i], replaced = o, true
			}
		}
		if !replaced {
			env = append(env, o)
		}
	}
	return env
}
