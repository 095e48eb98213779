// Package systemd_test checks bindwatch's systemd unit: that systemd accepts
// it, how exposed it leaves the host, and that the capabilities it grants
// are enough for every privileged thing the agent does and none is spare.
package systemd_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/bindwatch/bindwatch/internal/dacread"
)

func TestMain(m *testing.M) {
	if path := os.Getenv(readFileVar); path != "" {
		// As the agent starts: the unit's CAP_DAC_READ_SEARCH stays
		// permitted, effective only in dacread's open beneath the
		// runtimes' state roots (the defaults here).
		if _, err := dacread.Confine(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(4)
		}
		if _, err := os.ReadFile(path); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
		os.Exit(0)
	}
	if path := os.Getenv(rawReadVar); path != "" {
		// InaccessiblePaths= mounts an empty file of mode 0000 over the
		// path, which the capability reads (empty): the bytes tell.
		if b, err := os.ReadFile(path); err != nil {
			fmt.Println("read:", err)
		} else {
			fmt.Printf("read: %d bytes %q\n", len(b), strings.SplitN(string(b), ":", 2)[0])
		}
		os.Exit(0)
	}
	if os.Getenv(openat2Var) != "" {
		fd, err := unix.Openat2(unix.AT_FDCWD, "/", &unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: unix.RESOLVE_NO_SYMLINKS})
		if err == nil {
			unix.Close(fd)
			fmt.Println("openat2: ok")
		} else {
			fmt.Println("openat2:", err)
		}
		os.Exit(0)
	}
	// First: ExecStartPre= has the environment of ExecStart=.
	if group := os.Getenv(grantAccessVar); group != "" {
		if err := runGrantAccess(group); err != nil {
			fmt.Fprintln(os.Stderr, "grant-access:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	if addr := os.Getenv(holdVar); addr != "" {
		if err := runHolder(addr); err != nil {
			fmt.Fprintln(os.Stderr, "holder:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	if target := os.Getenv(ptraceVar); target != "" {
		if err := runPtraceProbe(target); err != nil {
			fmt.Fprintln(os.Stderr, "ptrace probe:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	if os.Getenv(ioUringVar) != "" {
		if err := runIoUringChild(); err != nil {
			fmt.Fprintln(os.Stderr, "io_uring child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
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
	if builtStandin.path != "" {
		os.RemoveAll(filepath.Dir(builtStandin.path))
	}
	os.Exit(code)
}
