package bpf

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bindwatch/bindwatch/test/testenv"
)

// TestGeneratedUpToDate rebuilds the BPF object and its Go bindings from the
// committed C source with the go:generate line of gen.go, into a temporary
// directory, and fails when the committed output differs: someone changed
// the C without running `make generate`.
func TestGeneratedUpToDate(t *testing.T) {
	if os.Getenv("BINDWATCH_IN_VM") == "1" {
		t.Skip("the VM guest has no compiler; the host tier runs this check")
	}
	testenv.RequireTool(t, "clang", "clang")
	testenv.RequireTool(t, "llvm-strip", "llvm")
	if _, err := os.Stat("/usr/include/bpf/bpf_helpers.h"); err != nil {
		testenv.Unavailable(t, "needs libbpf's headers (Debian package libbpf-dev)")
	}
	src, err := os.ReadFile("gen.go")
	if err != nil {
		t.Fatal(err)
	}
	var args []string
	for _, line := range strings.Split(string(src), "\n") {
		if rest, ok := strings.CutPrefix(line, "//go:generate go tool bpf2go "); ok {
			args = strings.Fields(rest)
		}
	}
	if args == nil {
		t.Fatal("gen.go has no //go:generate go tool bpf2go line")
	}
	out := t.TempDir()
	cmd := exec.Command("go", append([]string{"tool", "bpf2go", "-output-dir", out}, args...)...)
	cmd.Env = append(os.Environ(), "GOPACKAGE=bpf")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("bpf2go: %v\n%s", err, b)
	}
	for _, name := range []string{"bindwatch_x86_bpfel.o", "bindwatch_x86_bpfel.go"} {
		fresh, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		committed, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(fresh, committed) {
			t.Errorf("%s is stale: run `make generate` and commit the output", name)
		}
	}
}
