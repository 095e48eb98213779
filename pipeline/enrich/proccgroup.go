package enrich

import "strings"

// deletedSuffix is what the kernel appends to the unified path of a task
// whose cgroup was removed (a zombie's, for instance).
const deletedSuffix = " (deleted)"

// parseProcCgroup returns the unified-hierarchy path from the text of
// /proc/<pid>/cgroup: the "0::" line, which a pure cgroup2 host has alone
// and a hybrid host has after its v1 controller lines. A v1-only host has
// none, and bpf_get_current_cgroup_id then says nothing useful either.
func parseProcCgroup(data string) (path string, ok bool) {
	for data != "" {
		line := data
		if i := strings.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			data = ""
		}
		if rest, found := strings.CutPrefix(line, "0::"); found {
			rest = strings.TrimSuffix(rest, deletedSuffix)
			if rest == "" || rest[0] != '/' {
				return "", false
			}
			return rest, true
		}
	}
	return "", false
}
