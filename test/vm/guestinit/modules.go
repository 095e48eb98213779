package main

import (
	"bufio"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// loadModules inserts the modules listed in listPath, one path a line,
// already in dependency order: the guest has no modprobe and no modules.dep.
func loadModules(log *slog.Logger, listPath string) error {
	paths, err := readLines(listPath)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, p := range paths {
		name := strings.TrimSuffix(filepath.Base(p), ".ko")
		err := insertModule(p)
		switch {
		case errors.Is(err, unix.EEXIST):
			log.Info("module already loaded", "module", name)
		case err != nil:
			return fmt.Errorf("loading module %s: %w", name, err)
		default:
			log.Info("module loaded", "module", name)
		}
	}
	return nil
}

func insertModule(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return unix.FinitModule(int(f.Fd()), "", 0)
}

func readLines(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			lines = append(lines, l)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return lines, nil
}
