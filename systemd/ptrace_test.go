package systemd_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/bindwatch/bindwatch/bpf"
	"github.com/bindwatch/bindwatch/internal/dacread"
	"github.com/bindwatch/bindwatch/internal/sdnotify"
	"github.com/bindwatch/bindwatch/pipeline/enrich"
	"github.com/bindwatch/bindwatch/pipeline/inventory"
	"github.com/bindwatch/bindwatch/schemas"
	"github.com/bindwatch/bindwatch/test/testenv"
)

// holdVar makes the test binary listen on a TCP socket, write "pid fd
// port" to the file holdVar names, tell systemd it is ready (Type=notify)
// and keep the socket until SIGTERM: another user's listener.
const holdVar = "BINDWATCH_TEST_CHILD_HOLD"

// ptraceVar makes the test binary, as a Type=notify service, try what the
// agent does to another user's process (the holder's: the file ptraceVar
// names says which), write a report to reportVar's file, and wait.
const ptraceVar = "BINDWATCH_TEST_CHILD_PTRACE"

// holderScratch is memory of the holder's that the probe may overwrite
// with what it holds already: the address goes in the target file.
var holderScratch = [8]byte{'b', 'i', 'n', 'd', 'w', 'a', 't', 'c'}

func runHolder(target string) error {
	// Not net.Listen: Go opens MPTCP where the kernel has it, and the
	// socket's fd is wanted here.
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		return err
	}
	if err := unix.Listen(fd, 8); err != nil {
		return err
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return err
	}
	line := fmt.Sprintf("%d %d %d %d\n", os.Getpid(), fd, sa.(*unix.SockaddrInet4).Port, uintptr(unsafe.Pointer(&holderScratch)))
	if err := os.WriteFile(target, []byte(line), 0o644); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := sdnotify.FromEnvironment().Ready("holding " + strings.TrimSpace(line)); err != nil {
		return err
	}
	<-ctx.Done()
	return nil
}

// runPtraceProbe is the agent's reading of another user's process, step by
// step, each with the code the agent uses for it, then what else the
// privileges would allow.
func runPtraceProbe(target string) error {
	r := &report{UID: os.Getuid()}
	r.CapEff, _ = procStatusField("/proc/self/status", "CapEff")
	// As the agent: the unit's CAP_DAC_READ_SEARCH is effective only
	// inside dacread's open of runtime state, never for /proc.
	if _, err := dacread.Confine(); err != nil {
		return err
	}
	var pid, fd, port int
	var scratch uintptr
	b, err := os.ReadFile(target)
	if err != nil {
		return err
	}
	if _, err := fmt.Sscan(string(b), &pid, &fd, &port, &scratch); err != nil {
		return fmt.Errorf("%s: %q: %w", target, b, err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))

	// Enrichment's exe: /proc/<pid>/exe.
	e, err := enrich.New(enrich.Config{Logger: quiet})
	if err != nil {
		return err
	}
	var out schemas.BindEvent
	e.Enrich(&bpf.Event{PID: uint32(pid), Protocol: bpf.ProtoTCP, Port: uint16(port)}, &out)
	if out.Exe == nil {
		r.add("exe", "", errors.New("enrichment left exe null"))
	} else {
		r.add("exe", *out.Exe, nil)
	}

	// bound_if_name in another network namespace: /proc/<pid>/ns/net.
	ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", pid))
	r.add("ns/net", ns, err)

	// The inventory's procfs fallback: /proc/<pid>/fd.
	found, entries := false, 0
	err = inventory.ProcSource{Root: "/proc"}.Inventory(func(e *bpf.InventoryEntry) error {
		entries++
		found = found || int(e.PID) == pid && int(e.Port) == port
		return nil
	})
	if err == nil && !found {
		_, fdErr := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		err = fmt.Errorf("the walk (%d sockets) missed pid %d's listener on port %d: %v", entries, pid, port, fdErr)
	}
	r.add("procfs inventory", "", err)

	// The inventory's cookie of a socket nobody asked one for yet:
	// pidfd_getfd, then SO_COOKIE on the copy.
	cookie, err := copyCookie(pid, fd)
	r.add("pidfd_getfd cookie", fmt.Sprintf("cookie %d", cookie), err)
	if err != nil {
		r.Steps[len(r.Steps)-1].Detail = ""
	}

	// The price: writing another process's memory. /proc/<pid>/mem is
	// mode 0600 of its owner (a DAC check first); process_vm_writev checks
	// only the right to ptrace. What is written is what is there already.
	mem, err := os.OpenFile(fmt.Sprintf("/proc/%d/mem", pid), os.O_RDWR, 0)
	if err == nil {
		mem.Close()
	}
	r.add("/proc/<pid>/mem", "", err)
	local := holderScratch
	written, err := unix.ProcessVMWritev(pid, []unix.Iovec{{Base: &local[0], Len: uint64(len(local))}},
		[]unix.RemoteIovec{{Base: scratch, Len: len(local)}}, 0)
	if err != nil {
		written = 0
	}
	r.add("process_vm_writev", fmt.Sprintf("%d bytes written", written), err)

	if err := emit(r); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	n := sdnotify.FromEnvironment()
	if err := n.Ready("ptrace probe done"); err != nil {
		return err
	}
	go n.KeepAlive(ctx, func() error { return nil }, nil)
	<-ctx.Done()
	return n.Stopping()
}

func copyCookie(pid, fd int) (uint64, error) {
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return 0, fmt.Errorf("pidfd_open: %w", err)
	}
	defer unix.Close(pidfd)
	sock, err := unix.PidfdGetfd(pidfd, fd, 0)
	if err != nil {
		return 0, fmt.Errorf("pidfd_getfd: %w", err)
	}
	defer unix.Close(sock)
	return unix.GetsockoptUint64(sock, unix.SOL_SOCKET, unix.SO_COOKIE)
}

// TestWhatPtraceBuys boots systemd in a container with bindwatch.service
// as shipped but for ExecStart, which is the ptrace probe: what the agent
// does to another user's process (a listener nobody holds), under the
// unit's user, capabilities, system call filter and sandbox: what it reads
// (exe, ns/net, the procfs walk, a cookie through pidfd_getfd) and what a
// compromised agent could do besides (/proc/<pid>/mem, process_vm_writev). Then again with pidfd_getfd taken out of the filter
// (it is in @debug, which the unit otherwise keeps out), with
// process_vm_writev let in (the unit takes it out of @system-service), and
// with no-ptrace.conf. Each step must work exactly where bindwatch.service's
// comment on CAP_SYS_PTRACE says.
//
// Not the real agent: it names processes by their pids in the host's pid
// namespace, and nspawn gives the container one of its own, so every read
// of /proc/<pid> there would miss whatever the privileges.
func TestWhatPtraceBuys(t *testing.T) {
	inVM(t)
	testenv.RequireRoot(t)
	testenv.RequireTool(t, "systemd-nspawn", "systemd-container")
	testenv.RequireTool(t, "nsenter", "util-linux")
	if _, err := os.Stat("/sys/kernel/tracing/events"); err != nil {
		testenv.Unavailable(t, "needs tracefs mounted at /sys/kernel/tracing to bind into the container: %v", err)
	}
	dir := testenv.WorldReadableDir(t)
	root := filepath.Join(dir, "root")
	keepTracefsPerms(t)
	const (
		target = "/run/holder/target"
		rep    = "/var/lib/bindwatch/ptrace.json"
	)
	unit, n := replaceLine(readUnit(t), "ExecStart=", "ExecStart=/opt/bindwatch/standin\nEnvironment="+ptraceVar+"="+target+" "+reportVar+"="+rep)
	if n != 1 {
		t.Fatalf("%d ExecStart= lines", n)
	}
	// "-" as in the unit: the probe needs no tracefs, and tests running
	// beside this one give the host's tracefs to their own groups.
	if unit, n = replaceLine(unit, "ExecStartPre=", "ExecStartPre=-+/usr/bin/env "+grantAccessVar+"=bindwatch /opt/bindwatch/standin"); n != 1 {
		t.Fatalf("%d ExecStartPre= lines", n)
	}
	layOutRoot(t, root, unit, map[string]string{
		"etc/systemd/system/holder.service": "[Unit]\nDescription=a listener of another user\n[Service]\nType=notify\nUser=nobody\n" +
			"RuntimeDirectory=holder\nEnvironment=" + holdVar + "=" + target + "\nExecStart=/opt/bindwatch/standin\n",
		"etc/systemd/system/bindwatch.service.d/zz-holder.conf": "[Unit]\nRequires=holder.service\nAfter=holder.service\n",
	})
	for _, f := range []string{"etc/systemd/system/holder.service", "etc/systemd/system/bindwatch.service.d/zz-holder.conf"} {
		os.Chmod(filepath.Join(root, f), 0o644)
	}
	bpffs := filepath.Join(dir, "bpffs")
	testenv.Mount(t, "bpf", bpffs, "bpf", 0, "mode=0700")
	testenv.Mount(t, "/usr", filepath.Join(root, "usr"), "", unix.MS_BIND, "")
	if err := unix.Mount("", filepath.Join(root, "usr"), "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
		t.Fatal(err)
	}
	c := &container{t: t, Container: testenv.BootContainer(t, root, bpffs, "bindwatch-ptrace-"+strconv.Itoa(os.Getpid()))}
	old := c.waitActive(t, "")

	variants := []struct {
		name, dropIn string
		// works are the steps that must work; every other must fail. The
		// procfs walk never does: /proc/<pid>/fd is mode 0500 of the
		// process's owner, a DAC check CAP_SYS_PTRACE does not pass (only
		// CAP_DAC_READ_SEARCH, which the agent holds effective only to
		// open runtime state).
		works []string
	}{
		{"as shipped", "", []string{"exe", "ns/net", "pidfd_getfd cookie"}},
		{"pidfd_getfd filtered", "[Service]\nSystemCallFilter=~pidfd_getfd\n", []string{"exe", "ns/net"}},
		// Why the unit's filter keeps process_vm_writev out.
		{"process_vm_writev let through", "[Service]\nSystemCallFilter=process_vm_writev\n",
			[]string{"exe", "ns/net", "pidfd_getfd cookie", "process_vm_writev"}},
		{"with " + noPtraceDropIn, testenv.ReadFile(t, unitFile+".d/"+noPtraceDropIn), nil},
	}
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			c := c.in(t)
			path := filepath.Join(root, "etc/systemd/system/bindwatch.service.d/ptrace.conf")
			if v.dropIn == "" {
				os.Remove(path)
			} else if err := os.WriteFile(path, []byte(v.dropIn), 0o644); err != nil {
				t.Fatal(err)
			}
			c.run("systemctl", "daemon-reload")
			if v.dropIn != "" {
				os.Remove(filepath.Join(root, rep))
				c.run("systemctl", "restart", "bindwatch")
				old = c.waitActive(t, old)
			}
			b, err := os.ReadFile(filepath.Join(root, rep))
			if err != nil {
				t.Fatal(err)
			}
			var r report
			if err := json.Unmarshal(b, &r); err != nil {
				t.Fatal(err)
			}
			t.Logf("uid %d CapEff %s", r.UID, r.CapEff)
			for _, s := range r.Steps {
				want := false
				for _, w := range v.works {
					want = want || w == s.Name
				}
				t.Logf("%-19s %-5v %s %s", s.Name, s.OK, s.Detail, s.Err)
				if s.OK != want {
					t.Errorf("%s: ok %v, want %v", s.Name, s.OK, want)
				}
			}
			if len(r.Steps) != 6 {
				t.Errorf("%d steps, want 6", len(r.Steps))
			}
		})
	}
}
