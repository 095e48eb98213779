package enrich

import (
	"os"
	"testing"
)

func TestParseProcCgroup(t *testing.T) {
	tests := []struct {
		file string
		want string
		ok   bool
	}{
		{"hybrid", "/system.slice/docker-" + idA + ".scope", true},
		{"unified", "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1c7f0e2a_5b3d_4e8f_9a6c_2d1b0e3f4a5c.slice/cri-containerd-" + idB + ".scope", true},
		{"v1only", "", false},
		{"deleted", "/system.slice/nginx.service", true},
		{"root", "/", true},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			b, err := os.ReadFile("testdata/proccgroup/" + tt.file)
			if err != nil {
				t.Fatal(err)
			}
			got, ok := parseProcCgroup(string(b))
			if got != tt.want || ok != tt.ok {
				t.Errorf("got %q, %v; want %q, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestParseProcCgroupMalformed(t *testing.T) {
	for _, in := range []string{"", "0::", "0::relative/path\n", "1:name=systemd:/a\n"} {
		if got, ok := parseProcCgroup(in); ok {
			t.Errorf("parseProcCgroup(%q) = %q, want no path", in, got)
		}
	}
}
