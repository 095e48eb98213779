package policy

import "strings"

// identityKeys are the match keys that say which program a listener is,
// which its process cannot choose: comm, which any thread sets with
// prctl(PR_SET_NAME), is not one of them. An allow rule that names comm
// and none of these is warned about. A new key that identifies a
// workload is one more line here.
//
// The workload keys (unit, image, ...) are set by whoever deployed the
// program, not by the process: they count, unless the rule says
// trust: user, where they are the words of a user who can run anything
// under them (as container: podman-rootless does not count).
var identityKeys = []struct {
	hint  string           // the key as the warning suggests it
	names func(*Rule) bool // whether a rule names it
}{
	{"exe", func(r *Rule) bool { return len(r.exes) > 0 }},
	{"container (other than none or podman-rootless)", func(r *Rule) bool { return namesContainers(r.containers) }},
	{"a workload key (" + strings.Join(WorkloadKeys, ", ") + ") without trust: user", func(r *Rule) bool { return r.workload && !r.trustUser }},
}

// identified says whether r names the program by one of identityKeys.
func identified(r *Rule) bool {
	for _, k := range identityKeys {
		if k.names(r) {
			return true
		}
	}
	return false
}

// identityHint lists identityKeys for a warning: "exe or container".
func identityHint() string {
	hints := make([]string, len(identityKeys))
	for i, k := range identityKeys {
		hints[i] = k.hint
	}
	if len(hints) == 1 {
		return hints[0]
	}
	return strings.Join(hints[:len(hints)-1], ", ") + " or " + hints[len(hints)-1]
}

// namesContainers says whether a container key confines a rule to
// containers root made: a list with none in it also matches any host
// process, and one with podman-rootless whatever a user runs in a
// container it named.
func namesContainers(cs []containerSel) bool {
	for _, c := range cs {
		if c.kind == selNone || (c.kind == selRuntime && strings.EqualFold(c.value, RuntimeRootless)) {
			return false
		}
	}
	return len(cs) > 0
}
