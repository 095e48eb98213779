package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/bindwatch/bindwatch/test/testenv"
)

func TestSnoopRefusesBadCommandLines(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--bogus"}, "unknown flag: --bogus"},
		{[]string{"-x"}, "unknown shorthand flag: 'x' in -x"},
		{[]string{"-P", "abc"}, `invalid port "abc" in "abc": want a comma-separated list of ports 1-65535`},
		{[]string{"-P", "80,0"}, `invalid port "0" in "80,0"`},
		{[]string{"-P", "70000"}, `invalid port "70000"`},
		{[]string{"-p", "nginx"}, `invalid PID "nginx": want a positive process id`},
		{[]string{"-p", "0"}, `invalid PID "0"`},
		{[]string{"-u", "-1"}, `invalid UID "-1": want a user id, 0 or more`},
		{[]string{"--hook", "uprobe"}, `--hook: unknown hook "uprobe": want auto, fexit, kprobe, tracepoint`},
		{[]string{"--json", "--count"}, "--json and --count cannot be combined"},
		{[]string{"--duration", "soon"}, `invalid argument "soon" for "--duration" flag`},
		{[]string{"extra"}, `unexpected argument "extra"`},
	}
	for _, tt := range tests {
		err := runSnoop(tt.args)
		var uerr *usageError
		if !errors.As(err, &uerr) {
			t.Errorf("snoop %v = %v, want a usage error", tt.args, err)
			continue
		}
		if !strings.Contains(uerr.Error(), tt.want) {
			t.Errorf("snoop %v: %q, want it to contain %q", tt.args, uerr.Error(), tt.want)
		}
		if !strings.Contains(uerr.usage, "--cgroupmap") {
			t.Errorf("snoop %v: the usage shown lacks the flag list", tt.args)
		}
	}
}

// TestSnoopBadCommandLineExitStatus checks what a shell sees: status 2, the
// reason and the usage on stderr.
func TestSnoopBadCommandLineExitStatus(t *testing.T) {
	cmd := exec.Command(binary, "snoop", "-P", "80,http")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 {
		t.Fatalf("exit = %v, want status 2", err)
	}
	if !strings.HasPrefix(stderr.String(), `bindwatch snoop: invalid port "http" in "80,http"`) || !strings.Contains(stderr.String(), "--port") {
		t.Fatalf("stderr:\n%s", stderr.String())
	}
}

func TestSnoopNotRoot(t *testing.T) {
	testenv.RequireRoot(t)
	cmd := exec.Command(binary, "snoop")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("exit = %v, want status 1; output:\n%s", err, out)
	}
	want := "bindwatch snoop: must run as root, or with CAP_BPF and CAP_PERFMON, to load BPF programs\n"
	if string(out) != want {
		t.Fatalf("output %q, want exactly %q", out, want)
	}
}

// snoopProcess is bindwatch snoop running as a child process.
type snoopProcess struct {
	*testenv.Process
	stdout bytes.Buffer
}

// startSnoop starts snoop and waits until it says it is tracing.
func startSnoop(t *testing.T, args ...string) *snoopProcess {
	t.Helper()
	testenv.RequireRoot(t)
	p := &snoopProcess{}
	cmd := exec.Command(binary, append([]string{"snoop"}, args...)...)
	cmd.Stdout = &p.stdout
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.Process = testenv.Start(t, cmd, 10*time.Second)
	r := bufio.NewReader(stderr)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("snoop exited before tracing: %v", err)
		}
		if strings.HasPrefix(line, "Tracing binds") {
			go func() { _, _ = r.WriteTo(os.Stderr) }()
			return p
		}
	}
}

// stop sends sig (none: snoop ends by itself) and returns stdout once snoop
// has exited cleanly.
func (p *snoopProcess) stop(t *testing.T, sig os.Signal) string {
	t.Helper()
	var err error
	if sig != nil {
		err = p.Stop(t, sig)
	} else {
		err = p.Wait(t)
	}
	if err != nil {
		t.Fatalf("snoop exited with %v", err)
	}
	return p.stdout.String()
}

// listenTCP binds a TCP listener on loopback and returns its port.
func listenTCP(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l.Addr().(*net.TCPAddr).Port
}

func TestSnoopRows(t *testing.T) {
	p := startSnoop(t, "-t", "-E", "-U", "-p", strconv.Itoa(os.Getpid()))
	port := listenTCP(t)
	// The port is taken now: a second bind fails with EADDRINUSE.
	if _, err := net.Listen("tcp4", fmt.Sprint("127.0.0.1:", port)); err == nil {
		t.Fatal("second listen on the same port succeeded")
	}
	out := p.stop(t, os.Interrupt)

	lines := strings.Split(strings.TrimSpace(out), "\n")
	if lines[0] != "TIME(s)      UID  RC      PID COMM         PROT ADDR            PORT   OPTS IF" {
		t.Fatalf("header %q", lines[0])
	}
	// Go's listeners set SO_REUSEADDR, and try MPTCP where the kernel has it.
	row := regexp.MustCompile(`^(\d+\.\d{6}) +(\d+) +(-?\d+) +(\d+) (.{12}) (TCP |MPTCP) (.{15}) +(\d+) (.{5}) +(\d+)$`)
	var ok, failed bool
	for _, l := range lines[1:] {
		m := row.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("row %q does not have bindsnoop's columns", l)
		}
		if m[8] != strconv.Itoa(port) {
			continue // the Go runtime's own probe binds for IPv6 support
		}
		if m[2] != strconv.Itoa(os.Getuid()) || m[4] != strconv.Itoa(os.Getpid()) || strings.TrimSpace(m[7]) != "127.0.0.1" || m[9] != "...R." {
			t.Errorf("row %q: want uid %d, pid %d, 127.0.0.1 port %d, opts ...R.", l, os.Getuid(), os.Getpid(), port)
		}
		switch m[3] {
		case "0":
			ok = true
		case "-98":
			failed = true
		}
	}
	if !ok || !failed {
		t.Fatalf("want a successful bind and an EADDRINUSE one on port %d, got:\n%s", port, out)
	}
}

func TestSnoopCountOnSIGTERM(t *testing.T) {
	p := startSnoop(t, "--count", "-p", strconv.Itoa(os.Getpid()))
	var ports []int
	for range 3 {
		ports = append(ports, listenTCP(t))
	}
	out := p.stop(t, syscall.SIGTERM)
	if !strings.Contains(out, "LADDR                                           LPORT     BINDS") {
		t.Fatalf("no count table:\n%s", out)
	}
	for _, port := range ports {
		if !regexp.MustCompile(fmt.Sprintf(`(?m)^127\.0\.0\.1 +%d +1 +$`, port)).MatchString(out) {
			t.Errorf("count table lacks 127.0.0.1 %d with 1 bind:\n%s", port, out)
		}
	}
}

func TestSnoopJSONAndDuration(t *testing.T) {
	p := startSnoop(t, "-j", "-E", "--duration", "3s", "-p", strconv.Itoa(os.Getpid()))
	port := listenTCP(t)
	start := time.Now()
	out := p.stop(t, nil)
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("--duration 3s ran %v", took)
	}
	var found bool
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var ev struct {
			Time     time.Time `json:"time"`
			PID      int       `json:"pid"`
			Addr     string    `json:"addr"`
			Port     int       `json:"port"`
			Protocol string    `json:"protocol"`
			Reuse    bool      `json:"reuseaddr"`
			Error    int       `json:"error"`
		}
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		if ev.Port == port {
			found = true
			if ev.PID != os.Getpid() || ev.Addr != "127.0.0.1" || !ev.Reuse || ev.Error != 0 || time.Since(ev.Time) > time.Minute || time.Since(ev.Time) < 0 {
				t.Errorf("event %+v", ev)
			}
		}
	}
	if !found {
		t.Fatalf("no JSON event for port %d:\n%s", port, out)
	}
}

// TestSnoopHostileComm: a thread names itself with invalid UTF-8, a screen
// clearing escape and a newline, and binds. The real snoop's table must keep
// one row per bind with no byte a terminal acts on, and its JSON must be
// UTF-8 with the name escaped losslessly.
func TestSnoopHostileComm(t *testing.T) {
	pid := strconv.Itoa(os.Getpid())
	table := startSnoop(t, "-p", pid)
	jsonl := startSnoop(t, "-j", "-p", pid)
	port := testenv.BindAsThread(t, testenv.HostileComm)
	time.Sleep(100 * time.Millisecond) // the reader polls every 10 ms
	tableOut := table.stop(t, os.Interrupt)
	jsonOut := jsonl.stop(t, os.Interrupt)

	var row string
	for i, l := range strings.Split(strings.TrimSuffix(tableOut, "\n"), "\n") {
		for _, c := range []byte(l) {
			if c < 0x20 || c >= 0x7f {
				t.Errorf("table line %d carries byte %#x: %q", i, c, l)
			}
		}
		if f := strings.Fields(l); i > 0 && (len(f) != 7 || f[4] != strconv.Itoa(port)) {
			if len(f) != 7 {
				t.Errorf("table line %d is not a whole row: %q", i, l)
			}
			continue
		}
		if i > 0 {
			row = l
		}
	}
	if want := fmt.Sprintf("%8s %-12s UDP  127.0.0.1       %5d", pid, `\xff\xfe\x1b`, port); !strings.HasPrefix(row, want) {
		t.Errorf("row %q, want it to start %q\n%s", row, want, tableOut)
	}

	if !utf8.ValidString(jsonOut) {
		t.Errorf("JSON output is not UTF-8: %q", jsonOut)
	}
	var found bool
	for _, line := range strings.Split(strings.TrimSpace(jsonOut), "\n") {
		var ev struct {
			Port int    `json:"port"`
			Comm string `json:"comm"`
		}
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		if ev.Port == port {
			found = true
			if want := `\xff\xfe\x1b[2J\x0a`; ev.Comm != want {
				t.Errorf("JSON comm %q, want %q", ev.Comm, want)
			}
		}
	}
	if !found {
		t.Fatalf("no JSON event for port %d:\n%s", port, jsonOut)
	}
}
