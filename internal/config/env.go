package config

import (
	"slices"
	"strings"
)

// EnvNotConfig lists the BINDWATCH_* variables that are not configuration
// keys and that Load lets pass: they steer the test tiers, which run the
// agent with them set.
//
//	BINDWATCH_REQUIRE_ALL  1 turns skipped host-dependent tests into failures (test/testenv)
//	BINDWATCH_IN_VM        set inside the qemu test VM
//	BINDWATCH_TEST_*       test settings: BINDWATCH_TEST_HOOKS (hooks the capture
//	                       tests exercise), BINDWATCH_TEST_CHILD_* (helper processes)
//	BINDWATCH_VM_*         settings of the VM test tier (test/vm/run.sh)
//	BINDWATCH_ACTIVE_HELP, BINDWATCH_COMPLETION_DESCRIPTIONS
//	                       cobra's settings of bindwatch's shell completion,
//	                       which a user may export in the shell that runs it
//
// Every other BINDWATCH_* variable must name a key (see EnvName), or be the
// variable named by kafka.sasl.password_env, or Load refuses it: a misspelt
// variable would otherwise be ignored in silence.
var EnvNotConfig = []string{"BINDWATCH_REQUIRE_ALL", "BINDWATCH_IN_VM", "BINDWATCH_TEST_*", "BINDWATCH_VM_*",
	"BINDWATCH_ACTIVE_HELP", "BINDWATCH_COMPLETION_DESCRIPTIONS"}

const envPrefix = "BINDWATCH_"

func envNotConfig(name string) bool {
	for _, allowed := range EnvNotConfig {
		if prefix, ok := strings.CutSuffix(allowed, "*"); (ok && strings.HasPrefix(name, prefix)) || name == allowed {
			return true
		}
	}
	return false
}

// envLayer looks up the variable of every known key in environ and returns
// the values found, flat by dotted key, each with the variable it came from.
// Lists stay comma-separated text for decode to split. unknown lists the
// BINDWATCH_* variables that match no key and are not allow-listed.
func envLayer(environ []string) (values map[string]any, sources map[string]string, unknown []string) {
	values = make(map[string]any)
	sources = make(map[string]string)
	byName := make(map[string]string, len(keys))
	for _, k := range keys {
		byName[EnvName(k.name)] = k.name
	}
	seen := make(map[string]bool)
	for _, kv := range environ {
		name, value, ok := strings.Cut(kv, "=")
		// The first of duplicate entries wins, as in getenv(3).
		if !ok || seen[name] || !strings.HasPrefix(name, envPrefix) {
			continue
		}
		seen[name] = true
		if key, known := byName[name]; known {
			values[key] = value
			sources[key] = "from " + name
		} else if !envNotConfig(name) {
			unknown = append(unknown, name)
		}
	}
	slices.Sort(unknown)
	return values, sources, unknown
}

// unknownEnv refuses the unknown variables, except the one holding the SASL
// password: an operator may well call it BINDWATCH_KAFKA_PASSWORD.
func unknownEnv(unknown []string, passwordEnv string) []error {
	var names []string
	for _, k := range keys {
		names = append(names, EnvName(k.name))
	}
	var errs []error
	for _, name := range unknown {
		if name == passwordEnv {
			continue
		}
		problem := "environment variable matches no key"
		if s := closest(name, names); s != "" {
			problem += " (did you mean " + s + "?)"
		}
		errs = append(errs, &FieldError{Key: name, Problem: problem})
	}
	return errs
}

// lookupEnv is os.LookupEnv over an environ slice.
func lookupEnv(environ []string, name string) (string, bool) {
	for _, kv := range environ {
		if n, v, ok := strings.Cut(kv, "="); ok && n == name {
			return v, true
		}
	}
	return "", false
}
