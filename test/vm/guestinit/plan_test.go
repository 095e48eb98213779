package main

import (
	"slices"
	"testing"
)

func TestParseNULList(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     []string
	}{
		{"empty", "", nil},
		{"one", "-test.v\x00", []string{"-test.v"}},
		{"spaces and quotes survive", "-test.run\x00TestCapture/UDP v4\x00'x'\x00", []string{"-test.run", "TestCapture/UDP v4", "'x'"}},
		{"empty argument kept", "-test.run\x00\x00", []string{"-test.run", ""}},
		{"unterminated last", "a\x00b", []string{"a", "b"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := parseNULList(tc.in); !slices.Equal(got, tc.want) {
				t.Errorf("parseNULList(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestTestEnv(t *testing.T) {
	for _, tc := range []struct {
		name      string
		overrides []string
		key, want string
	}{
		{"default hooks", nil, "BINDWATCH_TEST_HOOKS", "fexit,kprobe,tracepoint"},
		{"hooks overridden", []string{"BINDWATCH_TEST_HOOKS=kprobe"}, "BINDWATCH_TEST_HOOKS", "kprobe"},
		{"new key added", []string{"GODEBUG=x=1"}, "GODEBUG", "x=1"},
		{"malformed ignored", []string{"NOEQUALS"}, "BINDWATCH_REQUIRE_ALL", "1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := testEnv(tc.overrides)
			var got []string
			for _, e := range env {
				if k, v, _ := cutEnv(e); k == tc.key {
					got = append(got, v)
				}
			}
			if len(got) != 1 || got[0] != tc.want {
				t.Errorf("%s in %q = %q, want exactly [%q]", tc.key, env, got, tc.want)
			}
			if slices.Contains(env, "NOEQUALS") {
				t.Errorf("malformed override leaked into %q", env)
			}
		})
	}
	if testEnv([]string{"BINDWATCH_TEST_HOOKS=kprobe"}); baseEnv[len(baseEnv)-1] != "BINDWATCH_TEST_HOOKS=fexit,kprobe,tracepoint" {
		t.Errorf("testEnv changed baseEnv: %q", baseEnv)
	}
}

func cutEnv(e string) (string, string, bool) {
	for i := range e {
		if e[i] == '=' {
			return e[:i], e[i+1:], true
		}
	}
	return e, "", false
}
