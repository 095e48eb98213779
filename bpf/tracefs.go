package bpf

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

const tracefsPath = "/sys/kernel/tracing"

// ensureTracefs mounts tracefs where the tracepoint hook looks for event ids,
// unless it (or the older debugfs path) is there already: minimal hosts and
// containers often come without it.
func ensureTracefs() error {
	for _, p := range []string{tracefsPath + "/events", "/sys/kernel/debug/tracing/events"} {
		// Not allowed to look (a non-root agent without CAP_DAC_READ_SEARCH)
		// is not "not mounted": let the attach say what is wrong.
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			return nil
		}
	}
	if err := unix.Mount("tracefs", tracefsPath, "tracefs", 0, ""); err != nil {
		if errors.Is(err, unix.EBUSY) {
			return nil
		}
		return fmt.Errorf("tracefs is not mounted and mounting it at %s failed: %w", tracefsPath, err)
	}
	return nil
}
