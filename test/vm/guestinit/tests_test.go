package main

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
)

// helperExitVar makes this test binary, re-executed by TestRunAll, exit
// with the given code instead of running tests: a real child process that
// passes or fails on demand.
const helperExitVar = "GUESTINIT_HELPER_EXIT"

func TestMain(m *testing.M) {
	if v := os.Getenv(helperExitVar); v != "" {
		code, _ := strconv.Atoi(v)
		os.Exit(code)
	}
	os.Exit(m.Run())
}

func TestFindTestBinaries(t *testing.T) {
	for _, tc := range []struct {
		name    string
		files   []string
		want    []string
		wantErr bool
	}{
		{"ordered by directory", []string{"02-pipeline/pipeline.test", "01-bpf/bpf.test", "01-bpf/testdata/x"}, []string{"bpf.test", "pipeline.test"}, false},
		{"directory without binary", []string{"01-bpf/testdata/x"}, nil, true},
		{"two binaries in one directory", []string{"01-bpf/a.test", "01-bpf/b.test"}, nil, true},
		{"nothing at all", nil, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			for _, f := range tc.files {
				p := filepath.Join(root, f)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, nil, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			bins, err := findTestBinaries(root)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			var names []string
			for _, b := range bins {
				names = append(names, b.name)
				if filepath.Dir(b.path) != b.dir {
					t.Errorf("%s runs in %s, want its own directory", b.path, b.dir)
				}
			}
			if !slices.Equal(names, tc.want) {
				t.Errorf("binaries = %q, want %q", names, tc.want)
			}
		})
	}
}

func TestRunAll(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, tc := range []struct {
		name  string
		codes []int
		want  []string
	}{
		{"all pass", []int{0, 0}, nil},
		{"one fails, the rest still run", []int{3, 0, 1}, []string{"b0.test exit 3", "b2.test exit 1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var failures []string
			for i, code := range tc.codes {
				bin := testBinary{name: "b" + strconv.Itoa(i) + ".test", path: self, dir: t.TempDir()}
				env := append(os.Environ(), helperExitVar+"="+strconv.Itoa(code))
				failures = append(failures, runAll(log, []testBinary{bin}, nil, env)...)
			}
			if !slices.Equal(failures, tc.want) {
				t.Errorf("failures = %q, want %q", failures, tc.want)
			}
		})
	}
}

func TestDescribeFailureNotStarted(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	bin := testBinary{name: "gone.test", path: filepath.Join(t.TempDir(), "gone.test"), dir: t.TempDir()}
	got := runAll(log, []testBinary{bin}, nil, nil)
	if len(got) != 1 || got[0][:len("gone.test: ")] != "gone.test: " {
		t.Errorf("failures = %q, want one naming gone.test and why it did not start", got)
	}
}
