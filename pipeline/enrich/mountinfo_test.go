package enrich

import (
	"os"
	"strings"
	"testing"
)

func TestParseCgroup2Mount(t *testing.T) {
	tests := []struct {
		file      string
		dir, root string
		ok        bool
	}{
		{"hybrid", "/sys/fs/cgroup/unified", "/", true},
		{"unified", "/sys/fs/cgroup", "/", true},
		{"v1only", "", "", false},
		// The container's own namespaced view comes first; the bind mount of
		// the whole host hierarchy is the one to use.
		{"container", "/host/sys/fs/cgroup", "/", true},
		{"subtree", "/run/my cgroups", "/kubepods.slice", true},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			b, err := os.ReadFile("testdata/mountinfo/" + tt.file)
			if err != nil {
				t.Fatal(err)
			}
			dir, root, ok := parseCgroup2Mount(string(b))
			if dir != tt.dir || root != tt.root || ok != tt.ok {
				t.Errorf("got %q, %q, %v; want %q, %q, %v", dir, root, ok, tt.dir, tt.root, tt.ok)
			}
		})
	}
}

func TestFindCgroupMount(t *testing.T) {
	m, err := findCgroupMount("testdata/proc")
	if err != nil {
		t.Fatal(err)
	}
	if m != (cgroupMount{dir: "/sys/fs/cgroup", root: "/"}) {
		t.Errorf("got %+v", m)
	}
	_, err = findCgroupMount("testdata/host/proc")
	if err == nil || !strings.Contains(err.Error(), "testdata/host/proc/self/mountinfo") {
		t.Errorf("err = %v, want one naming the missing file", err)
	}
}

func TestCgroupMountPaths(t *testing.T) {
	whole := cgroupMount{dir: "/sys/fs/cgroup", root: "/"}
	sub := cgroupMount{dir: "/mnt/cg", root: "/kubepods.slice"}
	tests := []struct {
		m       cgroupMount
		path    string
		dir     string
		ok      bool
		rel     string // pathOf(rel) must give path back
		hasPath bool
	}{
		{whole, "/", "/sys/fs/cgroup/", true, ".", true},
		{whole, "/system.slice/a.service", "/sys/fs/cgroup/system.slice/a.service", true, "system.slice/a.service", true},
		{sub, "/kubepods.slice", "/mnt/cg", true, ".", true},
		{sub, "/kubepods.slice/pod1.slice", "/mnt/cg/pod1.slice", true, "pod1.slice", true},
		{sub, "/kubepods.slicex/pod1.slice", "", false, "", false},
		{sub, "/system.slice", "", false, "", false},
		{cgroupMount{}, "/system.slice", "", false, "", false},
	}
	for _, tt := range tests {
		dir, ok := tt.m.dirOf(tt.path)
		if dir != tt.dir || ok != tt.ok {
			t.Errorf("%+v.dirOf(%q) = %q, %v; want %q, %v", tt.m, tt.path, dir, ok, tt.dir, tt.ok)
		}
		if tt.hasPath {
			if got := tt.m.pathOf(tt.rel); got != tt.path {
				t.Errorf("%+v.pathOf(%q) = %q, want %q", tt.m, tt.rel, got, tt.path)
			}
		}
	}
}

func TestUnescapeMountField(t *testing.T) {
	tests := map[string]string{
		`/plain`:             "/plain",
		`/a\040b`:            "/a b",
		`/tab\011x\134y`:     "/tab\tx\\y",
		`/trailing\04`:       `/trailing\04`,
		`/not\08octal`:       `/not\08octal`,
		`/new\012line\040 `:  "/new\nline  ",
		`\040\040`:           "  ",
		`/end\`:              `/end\`,
		`/mixed\040and\0401`: "/mixed and 1",
	}
	for in, want := range tests {
		if got := unescapeMountField(in); got != want {
			t.Errorf("unescapeMountField(%q) = %q, want %q", in, got, want)
		}
	}
}
