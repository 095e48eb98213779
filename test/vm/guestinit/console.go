package main

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// attachConsole mounts devtmpfs on /dev and makes /dev/console the standard
// input, output and error, so the test output reaches the serial port.
func attachConsole() error {
	if err := mountOne(mount{"devtmpfs", "/dev", "devtmpfs", 0, ""}); err != nil {
		return err
	}
	fd, err := unix.Open("/dev/console", unix.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return fmt.Errorf("opening /dev/console: %w", err)
	}
	for target := 0; target <= 2; target++ {
		if fd == target {
			continue
		}
		if err := unix.Dup3(fd, target, 0); err != nil {
			return fmt.Errorf("dup /dev/console to fd %d: %w", target, err)
		}
	}
	if fd > 2 {
		unix.Close(fd)
	}
	// Go reads the fds' mode once at start; rebind in case it saw them closed.
	os.Stdin, os.Stdout, os.Stderr = os.NewFile(0, "/dev/stdin"), os.NewFile(1, "/dev/stdout"), os.NewFile(2, "/dev/stderr")
	return nil
}
