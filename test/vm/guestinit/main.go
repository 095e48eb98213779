// Command guestinit is /init of the VM test tier's initramfs: it prepares the
// guest (console, file systems, loopback, kernel modules), runs every test
// binary that test/vm/run.sh packed, prints one result marker the host
// looks for, and powers the guest off.
package main

import (
	"fmt"
	"log/slog"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// The paths run.sh writes into the initramfs.
const (
	argsFile    = "/vm/args"    // extra test flags, NUL-separated
	envFile     = "/vm/env"     // KEY=VALUE overrides, NUL-separated, optional
	modulesFile = "/vm/modules" // .ko paths in load order, one per line, optional
	testsDir    = "/vm/tests"   // one directory per package holding its *.test
)

// resultPrefix starts the line the host waits for; nothing else prints it.
const resultPrefix = "BINDWATCH-VM-RESULT: "

func main() {
	// The kernel opens /dev/console for init only if rootfs has that node:
	// Debian's built-in initramfs does, run.sh's cpio does not (no device
	// nodes without privilege). Attach devtmpfs's anyway so a kernel without
	// one still shows the output; the log line says which case it was.
	_, fdErr := unix.FcntlInt(1, unix.F_GETFD, 0)
	consoleErr := attachConsole()
	log := slog.New(slog.NewTextHandler(os.Stdout, nil)).With("component", "vm-init")
	if consoleErr != nil {
		// Best effort: the kernel may still have given us a console.
		log.Error("attaching /dev/console", "err", consoleErr)
	}
	log.Info("console attached", "inherited_from_kernel", fdErr == nil)
	verdict := run(log)
	// Leading newline: a test's unterminated line must not swallow the marker.
	fmt.Printf("\n%s%s\n", resultPrefix, verdict)
	powerOff(log)
}

func run(log *slog.Logger) (verdict string) {
	defer func() {
		if r := recover(); r != nil {
			verdict = fmt.Sprintf("FAIL (init panicked: %v)", r)
		}
	}()
	var uts unix.Utsname
	if err := unix.Uname(&uts); err == nil {
		log.Info("kernel", "release", unix.ByteSliceToString(uts.Release[:]),
			"version", unix.ByteSliceToString(uts.Version[:]), "machine", unix.ByteSliceToString(uts.Machine[:]))
	}
	if err := mountAll(log); err != nil {
		return fmt.Sprintf("FAIL (init: %v)", err)
	}
	if err := loopbackUp(log, "lo"); err != nil {
		return fmt.Sprintf("FAIL (init: %v)", err)
	}
	if err := loadModules(log, modulesFile); err != nil {
		return fmt.Sprintf("FAIL (init: %v)", err)
	}
	args, err := readNULList(argsFile)
	if err != nil {
		return fmt.Sprintf("FAIL (init: %v)", err)
	}
	overrides, err := readNULList(envFile)
	if err != nil && !os.IsNotExist(err) {
		return fmt.Sprintf("FAIL (init: %v)", err)
	}
	bins, err := findTestBinaries(testsDir)
	if err != nil {
		return fmt.Sprintf("FAIL (init: %v)", err)
	}
	failures := runAll(log, bins, append([]string{"-test.v", "-test.count=1"}, args...), testEnv(overrides))
	if len(failures) > 0 {
		return "FAIL (" + strings.Join(failures, "; ") + ")"
	}
	return "PASS"
}

// powerOff ends the guest; with qemu's -no-reboot that ends qemu too.
func powerOff(log *slog.Logger) {
	unix.Sync()
	err := unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	// Returning from PID 1 panics the kernel, which panic=-1 turns into a
	// reboot and -no-reboot into qemu's exit: a slower, noisier way out.
	log.Error("power off failed", "err", err)
	os.Exit(1)
}
