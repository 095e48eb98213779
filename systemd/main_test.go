// Package systemd_test checks bindwatch's systemd unit: that systemd accepts
// it, how exposed it leaves the host, and that the capabilities it grants
// are enough for every privileged thing the agent does and none is spare.
package systemd_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

func TestMain(m *testing.M) {
	if os.Getenv(standinVar) != "" {
		if err := runStandin(); err != nil {
			fmt.Fprintln(os.Stderr, "stand-in:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	code := m.Run()
	if built.path != "" {
		os.RemoveAll(filepath.Dir(built.path))
	}
	os.Exit(code)
}
