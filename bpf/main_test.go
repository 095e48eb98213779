package bpf

import (
	"bufio"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/bindwatch/bindwatch/test/testenv"
)

// childBindVar makes the test binary, re-executed, perform one bind and exit:
// filters are about other processes, so tests need other processes.
const childBindVar = "BINDWATCH_TEST_CHILD_BIND"

// childFloodVar makes the re-executed test binary bind UDP sockets to one
// port as fast as it can for a while: "2s:PORT".
const childFloodVar = "BINDWATCH_TEST_CHILD_FLOOD"

func childFlood(spec string) error {
	d, p, _ := strings.Cut(spec, ":")
	dur, err := time.ParseDuration(d)
	if err != nil {
		return err
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		return err
	}
	sa := &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}, Port: port}
	for end := time.Now().Add(dur); time.Now().Before(end); {
		for range 256 {
			fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				return err
			}
			unix.Bind(fd, sa)
			unix.Close(fd)
		}
	}
	return nil
}

// childHoldVar makes the re-executed test binary wait until its stdin
// closes: a process that holds the fds it inherited.
const childHoldVar = "BINDWATCH_TEST_CHILD_HOLD"

func TestMain(m *testing.M) {
	if os.Getenv(childHoldVar) == "1" {
		io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}
	if d := os.Getenv(childFloodVar); d != "" {
		if err := childFlood(d); err != nil {
			fmt.Fprintln(os.Stderr, "child flood:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	if spec := os.Getenv(childBindVar); spec != "" {
		if err := childBind(spec); err != nil {
			fmt.Fprintln(os.Stderr, "child bind:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// childBind binds a socket as spec says ("tcp4 127.0.0.1:0" or "udp6 [::1]:0"),
// first waiting for a line on stdin when BINDWATCH_TEST_CHILD_WAIT=1.
func childBind(spec string) error {
	if os.Getenv("BINDWATCH_TEST_CHILD_WAIT") == "1" {
		if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
			return fmt.Errorf("waiting for the go-ahead: %w", err)
		}
	}
	kind, addr, _ := strings.Cut(spec, " ")
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return err
	}
	s := map[string]socketSpec{"tcp4": tcp4, "udp4": udp4, "tcp6": tcp6, "udp6": udp6}[kind]
	fd, err := unix.Socket(s.family, s.sotype, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return bindAddr(fd, s.family, ap)
}

// child is a re-executed test binary that binds once.
type child struct {
	*testenv.Process
	stdin *os.File
}

// startChild starts a child that binds as spec says. With wait, the child
// binds only after release is called.
func startChild(t *testing.T, spec string, attr *syscall.SysProcAttr, wait bool) *child {
	t.Helper()
	exe := os.Args[0]
	if attr != nil && attr.Credential != nil {
		exe = filepath.Join(testenv.WorldReadableDir(t), "child.test")
		testenv.CopyTestBinary(t, exe)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), childBindVar+"="+spec)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.SysProcAttr = attr
	c := &child{}
	if wait {
		cmd.Env = append(cmd.Env, "BINDWATCH_TEST_CHILD_WAIT=1")
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stdin, c.stdin = r, w
		defer r.Close()
	}
	c.Process = testenv.Start(t, cmd, 10*time.Second)
	return c
}

func (c *child) release(t *testing.T) {
	t.Helper()
	if _, err := c.stdin.WriteString("go\n"); err != nil {
		t.Fatal(err)
	}
	c.stdin.Close()
}

func (c *child) wait(t *testing.T) {
	t.Helper()
	if err := c.Wait(t); err != nil {
		t.Fatalf("child bind failed: %v", err)
	}
}

// runChild starts a child, lets it bind and waits for it.
func runChild(t *testing.T, spec string, attr *syscall.SysProcAttr) int {
	t.Helper()
	c := startChild(t, spec, attr, false)
	c.wait(t)
	return c.Pid()
}
