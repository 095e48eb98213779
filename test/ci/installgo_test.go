// Package ci_test runs .ci/install-go against a Go module proxy laid out on
// disk (file:// URLs, which curl reads) that serves a stand-in toolchain,
// so the installer's logic is tested with no network, no root, and without
// touching the machine's Go.
package ci_test

import (
	"archive/zip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/sumdb/dirhash"

	"github.com/bindwatch/bindwatch/test/testenv"
)

const script = "../../.ci/install-go"

// wanted is the toolchain go.mod names, as the script reads it.
func wanted(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	f, err := modfile.ParseLax("go.mod", b, nil)
	if err != nil {
		t.Fatal(err)
	}
	if f.Toolchain != nil {
		return f.Toolchain.Name
	}
	return "go" + f.Go.Version
}

// fakeProxy writes a proxy serving a toolchain module whose bin/go reports
// version, and a checksum database record saying sum for it (the module's
// real hash when sum is empty). It returns the proxy's URL and the hash.
func fakeProxy(t *testing.T, dir, version, reports, sum string) (string, string) {
	t.Helper()
	mod := "golang.org/toolchain@v0.0.1-" + version + ".linux-" + runtime.GOARCH
	zipPath := filepath.Join(dir, "golang.org/toolchain/@v", strings.TrimPrefix(mod, "golang.org/toolchain@")+".zip")
	if err := os.MkdirAll(filepath.Dir(zipPath), 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := os.Create(zipPath)
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(out)
	// Module zips keep no file modes: the script must make these executable.
	for name, body := range map[string]string{
		"bin/go":    "#!/bin/sh\necho go version " + reports + " linux/" + runtime.GOARCH + "\n",
		"bin/gofmt": "#!/bin/sh\n",
		"pkg/tool/linux_" + runtime.GOARCH + "/compile": "#!/bin/sh\n",
		"VERSION":                   version + "\n",
		"src/a file with spaces.go": "package a\n",
	} {
		w, err := zw.Create(mod + "/" + name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(body))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	out.Close()
	h1, err := dirhash.HashZip(zipPath, dirhash.Hash1)
	if err != nil {
		t.Fatal(err)
	}
	if sum == "" {
		sum = h1
	}
	lookup := filepath.Join(dir, "sumdb/sum.golang.org/lookup", mod)
	if err := os.MkdirAll(filepath.Dir(lookup), 0o755); err != nil {
		t.Fatal(err)
	}
	record := "12345\n" + strings.Replace(mod, "@", " ", 1) + " " + sum + "\n" +
		strings.Replace(mod, "@", " ", 1) + "/go.mod h1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\ngo.sum database tree\n"
	if err := os.WriteFile(lookup, []byte(record), 0o644); err != nil {
		t.Fatal(err)
	}
	return "file://" + dir, h1
}

// installGo runs the script with no go on PATH but the system's.
func installGo(t *testing.T, prefix, proxy string, extra ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(script)
	cmd.Env = append([]string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + t.TempDir(),
		"BINDWATCH_GO_PREFIX=" + prefix, "GOPROXY=" + proxy}, extra...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestInstallGo(t *testing.T) {
	for _, tool := range []string{"curl", "unzip"} {
		testenv.RequireTool(t, tool, tool)
	}
	if runtime.GOARCH != "amd64" && runtime.GOARCH != "arm64" {
		testenv.Unavailable(t, "the script knows toolchains for amd64 and arm64, not %s", runtime.GOARCH)
	}
	want := wanted(t)
	if out, err := exec.Command("sh", "-c", "PATH=/usr/sbin:/usr/bin:/sbin:/bin; command -v go && go version").Output(); err == nil &&
		strings.Contains(string(out), want+" ") {
		testenv.Unavailable(t, "the system PATH already has %s, so the script would install nothing: %s", want, out)
	}
	dir := t.TempDir()
	proxy, h1 := fakeProxy(t, filepath.Join(dir, "proxy"), want, want, "")
	prefix := filepath.Join(dir, "prefix")
	goBin := filepath.Join(prefix, "go/bin/go")

	t.Run("install", func(t *testing.T) {
		out, err := installGo(t, prefix, proxy)
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		if !strings.Contains(out, "installed "+want+" in "+prefix+"/go") || !strings.Contains(out, h1) {
			t.Errorf("output does not name the version, the prefix and the hash %s:\n%s", h1, out)
		}
		for _, f := range []string{"go/bin/go", "go/bin/gofmt", "go/pkg/tool/linux_" + runtime.GOARCH + "/compile"} {
			if fi, err := os.Stat(filepath.Join(prefix, f)); err != nil || fi.Mode()&0o111 != 0o111 {
				t.Errorf("%s: %v, want executable by all", f, fi.Mode())
			}
		}
		if v, err := exec.Command(goBin, "version").Output(); err != nil || !strings.Contains(string(v), want) {
			t.Errorf("installed go says %q, %v", v, err)
		}
		entries, _ := os.ReadDir(prefix)
		if len(entries) != 1 {
			t.Errorf("the prefix holds %d entries, want only go/ (no work directory left)", len(entries))
		}
	})

	t.Run("present", func(t *testing.T) {
		// A proxy that would fail: nothing may be fetched.
		out, err := installGo(t, prefix, "file:///nonexistent")
		if err != nil || !strings.Contains(out, want+" present ("+goBin+")") {
			t.Errorf("second run: %v\n%s", err, out)
		}
	})

	t.Run("which", func(t *testing.T) {
		// With no go of that version on PATH: where it installs, even
		// before it is there; the Makefile puts that first on PATH.
		cmd := exec.Command(script, "--which")
		cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "BINDWATCH_GO_PREFIX=" + prefix}
		b, err := cmd.Output()
		if err != nil || strings.TrimSpace(string(b)) != filepath.Join(prefix, "go/bin") {
			t.Errorf("--which: %q, %v; want %s", b, err, filepath.Join(prefix, "go/bin"))
		}
	})

	t.Run("another version is left alone", func(t *testing.T) {
		old := "#!/bin/sh\necho go version go1.19.8 linux/" + runtime.GOARCH + "\n"
		if err := os.WriteFile(goBin, []byte(old), 0o755); err != nil {
			t.Fatal(err)
		}
		out, err := installGo(t, prefix, proxy)
		if err == nil || !strings.Contains(out, "holds go1.19.8") || !strings.Contains(out, "BINDWATCH_GO_REPLACE=1") {
			t.Errorf("want a refusal naming go1.19.8 and BINDWATCH_GO_REPLACE: %v\n%s", err, out)
		}
		if b, _ := os.ReadFile(goBin); string(b) != old {
			t.Errorf("the other version was touched")
		}
		out, err = installGo(t, prefix, proxy, "BINDWATCH_GO_REPLACE=1")
		if err != nil {
			t.Fatalf("with BINDWATCH_GO_REPLACE=1: %v\n%s", err, out)
		}
		if v, _ := exec.Command(goBin, "version").Output(); !strings.Contains(string(v), want) {
			t.Errorf("after the replacement go says %q", v)
		}
	})

	t.Run("a hash the checksum database does not know is refused", func(t *testing.T) {
		bad, _ := fakeProxy(t, filepath.Join(dir, "bad"), want, want, "h1:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=")
		p := filepath.Join(dir, "prefix-bad")
		out, err := installGo(t, p, bad)
		if err == nil || !strings.Contains(out, "the checksum database says") || !strings.Contains(out, "not installed") {
			t.Errorf("want a refusal: %v\n%s", err, out)
		}
		if _, err := os.Stat(filepath.Join(p, "go")); err == nil {
			t.Errorf("%s/go exists after a refused install", p)
		}
		// As go does, GOSUMDB=off checks nothing.
		out, err = installGo(t, p, bad, "GOSUMDB=off")
		if err != nil || !strings.Contains(out, "GOSUMDB=off") {
			t.Errorf("with GOSUMDB=off: %v\n%s", err, out)
		}
	})

	t.Run("a toolchain that is not the version it claims is refused", func(t *testing.T) {
		liar, _ := fakeProxy(t, filepath.Join(dir, "liar"), want, "go1.19.8", "")
		p := filepath.Join(dir, "prefix-liar")
		out, err := installGo(t, p, liar)
		if err == nil || !strings.Contains(out, "says it is go1.19.8") {
			t.Errorf("want a refusal: %v\n%s", err, out)
		}
		if _, err := os.Stat(filepath.Join(p, "go")); err == nil {
			t.Errorf("%s/go exists after a refused install", p)
		}
	})
}
