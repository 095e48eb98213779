package systemd_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/bindwatch/bindwatch/test/testenv"
)

// maxExposure is the highest `systemd-analyze security` exposure (0 to 10,
// lower is better; up to 4.0 is "OK") the unit may score. Measured 2.3 with
// systemd 252 (Debian 12): 1.8 before CAP_NET_ADMIN (weighed 0.2, "network
// configuration privileges") and CAP_SYS_PTRACE (0.3, "ptrace() debugging
// abilities"), which iouring_test.go and ptrace_test.go show what they buy.
// What is left is what BPF and Kafka need (bpf, perf_event_open, CAP_BPF,
// CAP_PERFMON, ambient capabilities, AF_INET/AF_NETLINK, the host
// network), those two, or what the unit explains it must not set
// (ProtectProc, ProcSubset, PrivateUsers, ProtectHostname, IPAddressDeny,
// which is site-specific). 2.4 since CAP_DAC_READ_SEARCH (0.2, "may
// override UNIX file/IPC permission checks"), for the container runtimes'
// state (workload_test.go shows what it buys; no-workload.conf takes it
// away, back to 2.3); allowing capset, for confining it, changed nothing
// (@privileged was already counted for bpf).
const maxExposure = 2.4

// inVM skips t in the qemu guest, which has no systemd: these checks of the
// unit file run in the host tier.
func inVM(t *testing.T) {
	if os.Getenv("BINDWATCH_IN_VM") == "1" {
		t.Skip("the VM guest has no systemd-analyze; the host tier runs this check")
	}
}

// installed copies the unit, and the drop-ins of bindwatch.service.d named
// in dropIns, into a temporary directory with ExecStart pointing at a real
// bindwatch binary, since verify checks that the command exists, and
// returns the copy's path. edit, if not nil, changes the unit's text.
func installed(t *testing.T, dropIns []string, edit func(string) string) string {
	t.Helper()
	bin := bindwatchBinary(t)
	dir := t.TempDir()
	text := readUnit(t)
	const exec = "ExecStart=/usr/bin/bindwatch "
	if !strings.Contains(text, exec) {
		t.Fatalf("%s has no %q", unitFile, exec)
	}
	// ExecStart= and the ExecStartPre= that runs bindwatch tracefs-access.
	text = strings.ReplaceAll(text, "/usr/bin/bindwatch ", bin+" ")
	if edit != nil {
		text = edit(text)
	}
	unit := filepath.Join(dir, unitFile)
	if err := os.WriteFile(unit, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	d := unitFile + ".d"
	for _, name := range dropIns {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, d, name), []byte(testenv.ReadFile(t, filepath.Join(d, name))), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return unit
}

// The drop-ins shipped in bindwatch.service.d.
const (
	exampleDropIn    = "example-override.conf"
	noNetAdminDropIn = "no-net-admin.conf"
	noPtraceDropIn   = "no-ptrace.conf"
	noWorkloadDropIn = "no-workload.conf"
)

var built struct {
	once sync.Once
	path string
	err  error
}

// bindwatchBinary builds cmd/bindwatch once for every test that needs it,
// without cgo as the release build (Makefile's package target, the
// Dockerfile) is: with cgo the agent cannot confine CAP_DAC_READ_SEARCH to
// one thread (internal/dacread).
func bindwatchBinary(t *testing.T) string {
	t.Helper()
	built.once.Do(func() {
		dir, err := os.MkdirTemp("", "bindwatch-systemd-bin-")
		if err != nil {
			built.err = err
			return
		}
		built.path = filepath.Join(dir, "bindwatch")
		cmd := exec.Command("go", "build", "-o", built.path, "../cmd/bindwatch")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			built.err = fmt.Errorf("building bindwatch: %v\n%s", err, out)
		}
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.path
}

// TestVerify runs `systemd-analyze verify`, which exits 0 even when it
// ignores a line it cannot parse (an unknown key, or Type=notify-reload on
// systemd 252), so any output at all is a failure.
func TestVerify(t *testing.T) {
	inVM(t)
	analyze := testenv.RequireTool(t, "systemd-analyze", "systemd")
	cases := []struct {
		name    string
		dropIns []string
		edit    func(string) string
		clean   bool
	}{
		{"unit", nil, nil, true},
		{"unit with the example drop-in", []string{exampleDropIn}, nil, true},
		{"unit with the drop-in that takes CAP_NET_ADMIN away", []string{noNetAdminDropIn}, nil, true},
		{"unit with the drop-in that takes CAP_SYS_PTRACE away", []string{noPtraceDropIn}, nil, true},
		{"unit with the drop-in that takes CAP_DAC_READ_SEARCH away", []string{noWorkloadDropIn}, nil, true},
		{"unit with every drop-in", []string{exampleDropIn, noNetAdminDropIn, noPtraceDropIn, noWorkloadDropIn}, nil, true},
		// The control: proves a warning is caught.
		{"misspelt key", nil, func(s string) string {
			return strings.Replace(s, "WatchdogSec=", "WatchdogSecs=", 1)
		}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			unit := installed(t, c.dropIns, c.edit)
			out, err := exec.Command(analyze, "verify", "--man=no", unit).CombinedOutput()
			clean := err == nil && len(strings.TrimSpace(string(out))) == 0
			if clean != c.clean {
				t.Errorf("systemd-analyze verify: %v, clean %v, want %v:\n%s", err, clean, c.clean, out)
			}
		})
	}
}

var exposureLine = regexp.MustCompile(`Overall exposure level for \S+: (\d+\.\d+) (\S+)`)

// TestSecurityExposure scores the unit with `systemd-analyze security
// --offline=true` (no running systemd needed) and fails above maxExposure.
func TestSecurityExposure(t *testing.T) {
	inVM(t)
	analyze := testenv.RequireTool(t, "systemd-analyze", "systemd")
	unit := installed(t, nil, nil)
	cmd := exec.Command(analyze, "security", "--offline=true", "--no-pager", unit)
	cmd.Env = append(os.Environ(), "SYSTEMD_COLORS=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	m := exposureLine.FindStringSubmatch(string(out))
	if m == nil {
		t.Fatalf("no overall exposure in:\n%s", out)
	}
	score, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("exposure %.1f %s (at most %.1f allowed)", score, m[2], maxExposure)
	if score > maxExposure {
		var exposed []string
		for _, line := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(line, "✗") {
				exposed = append(exposed, line)
			}
		}
		t.Errorf("exposure %.1f %s, above %.1f; exposed:\n%s", score, m[2], maxExposure, strings.Join(exposed, "\n"))
	}
}

var builtStandin struct {
	once sync.Once
	path string
	err  error
}

// copyStandin copies this test binary to path, executable by all, for the
// tests that re-run it as the agent would run under the unit. Linked with
// cgo (go test's default where a C compiler is installed), it could not
// confine CAP_DAC_READ_SEARCH as the agent does (internal/dacread), so
// then the copy is of this package's tests built once more without cgo,
// as the release build is.
func copyStandin(t *testing.T, path string) {
	t.Helper()
	if _, _, e := syscall.AllThreadsSyscall(syscall.SYS_GETPID, 0, 0, 0); e != syscall.ENOTSUP {
		testenv.CopyTestBinary(t, path)
		return
	}
	builtStandin.once.Do(func() {
		dir, err := os.MkdirTemp("", "bindwatch-systemd-standin-")
		if err != nil {
			builtStandin.err = err
			return
		}
		builtStandin.path = filepath.Join(dir, "systemd.test")
		cmd := exec.Command("go", "test", "-c", "-o", builtStandin.path, ".")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			builtStandin.err = fmt.Errorf("building the stand-in without cgo: %v\n%s", err, out)
		}
	})
	if builtStandin.err != nil {
		t.Fatal(builtStandin.err)
	}
	testenv.CopyFile(t, builtStandin.path, path, 0o755)
}
