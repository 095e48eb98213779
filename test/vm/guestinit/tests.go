package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"time"
)

// testBinary is one package's compiled tests and the directory to run them
// in (it holds the package's testdata, as under `go test`).
type testBinary struct {
	name, path, dir string
}

// findTestBinaries returns the *.test file of each directory under root, in
// the directories' order (run.sh numbers them in the order asked for).
func findTestBinaries(root string) ([]testBinary, error) {
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("listing test binaries: %w", err)
	}
	var bins []testBinary
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		dir := filepath.Join(root, e.Name())
		matches, err := filepath.Glob(filepath.Join(dir, "*.test"))
		if err != nil {
			return nil, err
		}
		if len(matches) != 1 {
			return nil, fmt.Errorf("%s holds %d test binaries, want 1", dir, len(matches))
		}
		bins = append(bins, testBinary{name: filepath.Base(matches[0]), path: matches[0], dir: dir})
	}
	sort.Slice(bins, func(i, j int) bool { return bins[i].dir < bins[j].dir })
	if len(bins) == 0 {
		return nil, fmt.Errorf("no test binaries under %s", root)
	}
	return bins, nil
}

// runAll runs every binary, even after one fails, and returns one
// "<binary> exit N" per failure.
func runAll(log *slog.Logger, bins []testBinary, args, env []string) []string {
	var failures []string
	for _, b := range bins {
		log.Info("running", "binary", b.name, "args", args)
		start := time.Now()
		err := runOne(b, args, env)
		took := time.Since(start).Round(time.Millisecond)
		if err != nil {
			log.Error("test binary failed", "binary", b.name, "took", took, "err", err)
			failures = append(failures, describeFailure(b.name, err))
			continue
		}
		log.Info("test binary passed", "binary", b.name, "took", took)
	}
	return failures
}

func runOne(b testBinary, args, env []string) error {
	cmd := exec.Command(b.path, args...)
	cmd.Dir = b.dir
	cmd.Env = env
	// Straight to the console fds: no copy in between that could lose the
	// tail of the output if the test binary crashes.
	cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, os.Stdout, os.Stderr
	return cmd.Run()
}

func describeFailure(name string, err error) string {
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		if code := exit.ExitCode(); code >= 0 {
			return fmt.Sprintf("%s exit %d", name, code)
		}
		return fmt.Sprintf("%s %v", name, exit.ProcessState)
	}
	return fmt.Sprintf("%s: %v", name, err)
}
