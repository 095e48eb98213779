package bpf

import "strings"

// parseCgroup2Mount returns the first cgroup2 mount point in a
// /proc/self/mounts text.
func parseCgroup2Mount(mounts string) (string, bool) {
	for _, line := range strings.Split(mounts, "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[2] == "cgroup2" {
			return f[1], true
		}
	}
	return "", false
}
