package enrich

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// cgroupMount is where the unified hierarchy is mounted and which cgroup
// the mount shows at its top: "/" normally, another path when the agent
// sees the hierarchy through a cgroup namespace or a bind mount of a subtree.
type cgroupMount struct {
	dir  string // mount point; "" when no cgroup2 mount is known
	root string // cgroup path shown at dir
}

// dirOf is the directory of cgroup path p under the mount, false when p is
// outside what the mount shows.
func (m cgroupMount) dirOf(p string) (string, bool) {
	if m.dir == "" {
		return "", false
	}
	if m.root == "/" {
		return m.dir + p, true
	}
	rel, ok := strings.CutPrefix(p, m.root)
	if !ok || (rel != "" && rel[0] != '/') {
		return "", false
	}
	return m.dir + rel, true
}

// pathOf is the cgroup path of directory rel (relative to the mount point,
// "." for the mount point itself) as /proc/<pid>/cgroup would print it.
func (m cgroupMount) pathOf(rel string) string {
	if rel == "." {
		return m.root
	}
	if m.root == "/" {
		return "/" + rel
	}
	return m.root + "/" + rel
}

// findCgroupMount locates the cgroup2 mount in the agent's own mount table.
func findCgroupMount(procRoot string) (cgroupMount, error) {
	path := filepath.Join(procRoot, "self", "mountinfo")
	b, err := os.ReadFile(path)
	if err != nil {
		return cgroupMount{}, fmt.Errorf("reading the mount table: %w", err)
	}
	dir, root, ok := parseCgroup2Mount(string(b))
	if !ok {
		return cgroupMount{}, fmt.Errorf("%s: no cgroup2 mount", path)
	}
	return cgroupMount{dir: dir, root: root}, nil
}

// parseCgroup2Mount finds the cgroup2 mount in the text of
// /proc/<pid>/mountinfo (proc(5)): the first one showing the whole
// hierarchy, else the first one. Hybrid hosts mount it at
// /sys/fs/cgroup/unified, pure cgroup2 hosts at /sys/fs/cgroup.
func parseCgroup2Mount(data string) (dir, root string, ok bool) {
	for _, line := range strings.Split(data, "\n") {
		fields := strings.Fields(line)
		sep := -1
		for i := 6; i < len(fields); i++ {
			if fields[i] == "-" {
				sep = i
				break
			}
		}
		if sep < 0 || sep+1 >= len(fields) || fields[sep+1] != "cgroup2" {
			continue
		}
		d, r := unescapeMountField(fields[4]), unescapeMountField(fields[3])
		if r == "/" {
			return d, r, true
		}
		if !ok {
			dir, root, ok = d, r, true
		}
	}
	return dir, root, ok
}

// unescapeMountField undoes the kernel's octal escaping of space, tab,
// newline and backslash in mountinfo paths.
func unescapeMountField(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOctal(s[i+1]) && isOctal(s[i+2]) && isOctal(s[i+3]) {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }
