package systemd_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/bindwatch/bindwatch/bpf"
	"github.com/bindwatch/bindwatch/test/testenv"
)

// standinUID is the unprivileged user the stand-in runs as, like the unit's
// User=bindwatch: no passwd entry is needed for a numeric uid.
const standinUID = 64123

// capNumbers names the capabilities a unit might grant.
var capNumbers = map[string]int{
	"CAP_DAC_OVERRIDE":    unix.CAP_DAC_OVERRIDE,
	"CAP_DAC_READ_SEARCH": unix.CAP_DAC_READ_SEARCH,
	"CAP_NET_ADMIN":       unix.CAP_NET_ADMIN,
	"CAP_NET_RAW":         unix.CAP_NET_RAW,
	"CAP_IPC_LOCK":        unix.CAP_IPC_LOCK,
	"CAP_SYS_PTRACE":      unix.CAP_SYS_PTRACE,
	"CAP_SYS_ADMIN":       unix.CAP_SYS_ADMIN,
	"CAP_SYS_RESOURCE":    unix.CAP_SYS_RESOURCE,
	"CAP_SYSLOG":          unix.CAP_SYSLOG,
	"CAP_PERFMON":         unix.CAP_PERFMON,
	"CAP_BPF":             unix.CAP_BPF,
}

// TestCapabilities runs the stand-in as an unprivileged user with the
// unit's ambient capabilities, as systemd would, and requires every step
// to work; then with each capability taken away in turn, and requires some
// step to fail, logging which: each capability the unit grants is needed.
// The VM tier runs it once per hook (BINDWATCH_TEST_HOOKS).
func TestCapabilities(t *testing.T) {
	testenv.RequireRoot(t)
	text := readUnit(t)
	ambient := directive(text, "AmbientCapabilities")
	bounding := directive(text, "CapabilityBoundingSet")
	if len(ambient) != 1 || len(bounding) != 1 {
		t.Fatalf("want one AmbientCapabilities= and one CapabilityBoundingSet= line, got %q and %q", ambient, bounding)
	}
	granted := strings.Fields(ambient[0])
	if b := strings.Fields(bounding[0]); !sameSet(granted, b) {
		t.Fatalf("CapabilityBoundingSet %q is not AmbientCapabilities %q: this test checks only the ambient set", b, granted)
	}
	// CAP_DAC_READ_SEARCH is granted, for the runtimes' state: the
	// "runtime state" step below needs it, and dacread keeps it effective
	// only there (that step also checks an ordinary read still fails).
	for _, c := range []string{"CAP_SYS_ADMIN", "CAP_DAC_OVERRIDE"} {
		if slices.Contains(granted, c) {
			t.Errorf("the unit grants %s", c)
		}
	}
	dir := testenv.WorldReadableDir(t)
	exe := filepath.Join(dir, "standin")
	copyStandin(t, exe)
	// What the unit's ExecStartPre= opens to the agent's group: the ids in
	// tracefs it needs and the search of bpffs's root.
	pinDir := privateBPFFS(t, dir)
	grantAsUnit(t, text, standinUID, filepath.Dir(pinDir))
	rootFS := machineIDRoot(t, dir)
	stateRoot := runtimeStateRoot(t, dir)

	type capCase struct {
		name   string
		caps   []string
		wantOK bool
	}
	cases := []capCase{{"the unit's set", granted, true}}
	for _, c := range granted {
		cases = append(cases, capCase{"without " + c, slices.DeleteFunc(slices.Clone(granted), func(s string) bool { return s == c }), false})
	}
	cases = append(cases, capCase{"none", nil, false})

	hooks := testHooks(t)
	if perfParanoid(t) > 2 {
		if os.Getenv("BINDWATCH_IN_VM") != "1" {
			testenv.Unavailable(t, "kernel.perf_event_paranoid is %d: this (Debian or Ubuntu) kernel refuses perf_event_open without CAP_SYS_ADMIN at 3 and above, whatever CAP_PERFMON says; set it to 2 as bindwatch.service explains", perfParanoid(t))
		}
		// The VM's Debian kernel boots with 3: show what that does to each
		// hook, as bindwatch.service says, then lower it as it advises.
		for _, hook := range hooks {
			t.Run(string(hook)+"/perf_event_paranoid=3", func(t *testing.T) {
				rep := runStandinAs(t, exe, hook, granted, pinDir, rootFS, stateRoot)
				failed := strings.Join(rep.failed(), "\n")
				t.Logf("failed: %s", failed)
				switch perf, known := hookUsesPerfEvents[hook]; {
				case !known:
				case perf && !strings.Contains(failed, "permission denied"):
					t.Errorf("the %s hook did not fail with EACCES at perf_event_paranoid 3: bindwatch.service's note on it is stale", hook)
				case !perf && failed != "":
					t.Errorf("the %s hook uses no perf event, yet failed at perf_event_paranoid 3", hook)
				}
			})
		}
		setPerfParanoid(t, 2)
	}
	for _, hook := range hooks {
		for _, c := range cases {
			t.Run(string(hook)+"/"+c.name, func(t *testing.T) {
				rep := runStandinAs(t, exe, hook, c.caps, pinDir, rootFS, stateRoot)
				if want := capMask(t, c.caps); rep.CapEff != want {
					t.Fatalf("stand-in ran with CapEff %s, want %s: the test is not measuring what it claims", rep.CapEff, want)
				}
				if rep.UID != standinUID {
					t.Fatalf("stand-in ran as uid %d, want %d", rep.UID, standinUID)
				}
				failed := rep.failed()
				if c.wantOK {
					for _, s := range rep.Steps {
						t.Logf("%-21s ok  %s", s.Name, s.Detail)
					}
					if len(failed) > 0 {
						t.Errorf("with %v, steps failed:\n  %s", c.caps, strings.Join(failed, "\n  "))
					}
					return
				}
				if len(failed) == 0 {
					t.Errorf("every step worked with only %v: the unit grants more than it needs", c.caps)
				}
				t.Logf("needed by:\n  %s", strings.Join(failed, "\n  "))
			})
		}
	}
}

// perfParanoidPath is kernel.perf_event_paranoid.
const perfParanoidPath = "/proc/sys/kernel/perf_event_paranoid"

// hookUsesPerfEvents says which hooks attach through perf_event_open: the
// kprobe PMU and tracepoint events do; fexit attaches with a BPF link.
var hookUsesPerfEvents = map[bpf.Hook]bool{bpf.HookFexit: false, bpf.HookKprobe: true, bpf.HookTracepoint: true}

func perfParanoid(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile(perfParanoidPath)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("%s: %v", perfParanoidPath, err)
	}
	return n
}

// setPerfParanoid sets kernel.perf_event_paranoid until t ends. Only the
// VM tier calls it: a test does not loosen a real host's setting.
func setPerfParanoid(t *testing.T, n int) {
	t.Helper()
	old := perfParanoid(t)
	write := func(v int) error { return os.WriteFile(perfParanoidPath, []byte(strconv.Itoa(v)), 0o644) }
	if err := write(n); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { write(old) })
}

// testHooks are the hooks to check: BINDWATCH_TEST_HOOKS (the VM tier sets
// all three), else whatever auto picks on this kernel.
func testHooks(t *testing.T) []bpf.Hook {
	v := os.Getenv("BINDWATCH_TEST_HOOKS")
	if v == "" {
		return []bpf.Hook{bpf.HookAuto}
	}
	var hooks []bpf.Hook
	for _, s := range strings.Split(v, ",") {
		h, err := bpf.ParseHook(s)
		if err != nil {
			t.Fatalf("BINDWATCH_TEST_HOOKS: %v", err)
		}
		hooks = append(hooks, h)
	}
	return hooks
}

// runStandinAs runs the stand-in as standinUID with exactly caps as its
// ambient (hence effective) set, binding a UDP socket to lo from this
// process once the stand-in has attached its hook.
func runStandinAs(t *testing.T, exe string, hook bpf.Hook, caps []string, pinDir, rootFS, stateRoot string) report {
	t.Helper()
	var ambient []uintptr
	for _, c := range caps {
		ambient = append(ambient, uintptr(capNumbers[c]))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, "-test.run=^$")
	cmd.Dir = filepath.Dir(exe)
	cmd.Env = append(os.Environ(), standinVar+"="+string(hook), binderVar+"=parent",
		pinDirVar+"="+pinDir, rootFSVar+"="+rootFS, stateRootVar+"="+stateRoot)
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential:  &syscall.Credential{Uid: standinUID, Gid: standinUID, Groups: []uint32{}},
		AmbientCaps: ambient,
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var rep *report
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == loadedLine:
			bindToLo(t)
		case strings.HasPrefix(line, reportPrefix):
			rep = new(report)
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, reportPrefix)), rep); err != nil {
				t.Fatalf("stand-in report %q: %v", line, err)
			}
		}
	}
	io.Copy(io.Discard, stdout)
	if err := cmd.Wait(); err != nil || rep == nil {
		t.Fatalf("stand-in: %v, report %v\n%s", err, rep, stderr.String())
	}
	return *rep
}

// bindToLo binds a UDP socket to 127.0.0.1 with SO_BINDTODEVICE lo, so the
// event has a bound interface for enrichment to name over netlink.
func bindToLo(t *testing.T) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.SetsockoptString(fd, unix.SOL_SOCKET, unix.SO_BINDTODEVICE, "lo"); err != nil {
		t.Fatal(err)
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
}

// capMask is /proc/<pid>/status's CapEff for caps.
func capMask(t *testing.T, caps []string) string {
	var m uint64
	for _, c := range caps {
		n, ok := capNumbers[c]
		if !ok {
			t.Fatalf("unknown capability %s: add it to capNumbers", c)
		}
		m |= 1 << n
	}
	return fmt.Sprintf("%016x", m)
}

func sameSet(a, b []string) bool {
	a, b = slices.Sorted(slices.Values(a)), slices.Sorted(slices.Values(b))
	return slices.Equal(a, b)
}

// privateBPFFS mounts a bpffs of its own under dir with the mode systemd
// gives /sys/fs/bpf (0700, root), makes the agent's directory in it as
// bindwatch.tmpfiles does, and returns that directory. A private mount
// rather than /sys/fs/bpf: the host's may have another mode.
func privateBPFFS(t *testing.T, dir string) string {
	t.Helper()
	mnt := filepath.Join(dir, "bpffs")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("bpf", mnt, "bpf", 0, "mode=0700"); err != nil {
		testenv.Unavailable(t, "mounting a bpffs at %s: %v", mnt, err)
	}
	t.Cleanup(func() { unix.Unmount(mnt, unix.MNT_DETACH) })
	pins := filepath.Join(mnt, "bindwatch")
	if err := os.Mkdir(pins, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(pins, standinUID, standinUID); err != nil {
		t.Fatal(err)
	}
	return pins
}

// machineIDRoot is enrich's RootFS: "/" when the host has /etc/machine-id,
// else (the VM's initramfs) a directory with a made-up one.
func machineIDRoot(t *testing.T, dir string) string {
	t.Helper()
	if _, err := os.Stat("/etc/machine-id"); err == nil {
		return "/"
	}
	root := filepath.Join(dir, "root")
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	id := strconv.FormatInt(time.Now().UnixNano(), 16)
	id = strings.Repeat("0", 32-len(id)) + id
	if err := os.WriteFile(filepath.Join(root, "etc", "machine-id"), []byte(id+"\n"), 0o444); err != nil {
		t.Fatal(err)
	}
	return root
}

// runtimeStateRoot lays out a container runtime's state as Docker keeps
// it, root's alone: containers/c1/config.v2.json, 0600, in 0700
// directories, under dir (which others may enter).
func runtimeStateRoot(t *testing.T, dir string) string {
	t.Helper()
	root := filepath.Join(dir, "docker")
	file := filepath.Join(root, "containers/c1/config.v2.json")
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, []byte(`{"Name":"/web1"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	return root
}
