package systemd_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/bindwatch/bindwatch/bpf"
	"github.com/bindwatch/bindwatch/test/testenv"
)

// ioUringVar makes the test binary bind and listen through io_uring, print
// an ioUringResult and exit: what the test runs in the container as an
// unprivileged user.
const ioUringVar = "BINDWATCH_TEST_CHILD_IOURING"

type ioUringResult struct {
	PID, UID    int
	Port        uint16
	Unsupported bool
	Err         string
}

// runIoUringChild binds and listens a TCP socket on 127.0.0.1 through
// io_uring, holds it a moment and closes it.
func runIoUringChild() error {
	res := ioUringResult{PID: os.Getpid(), UID: os.Getuid()}
	l, err := testenv.IoUringListen()
	if err != nil {
		res.Err, res.Unsupported = err.Error(), errors.Is(err, testenv.ErrIoUringUnsupported)
	} else {
		res.Port = l.Port
		defer l.Close()
	}
	return printResult(res)
}

// printResult prints res for the test and gives the agent a moment to see
// the socket before it closes.
func printResult(res ioUringResult) error {
	b, err := json.Marshal(res)
	if err != nil {
		return err
	}
	fmt.Println(string(b))
	time.Sleep(200 * time.Millisecond)
	return nil
}

// TestShippedUnitSeesIoUring boots systemd in a container with the unit as
// shipped, the real agent as ExecStart and the shipped configuration (only
// the brokers, devkafka on the host, and metrics.listen set in a drop-in),
// then has an unprivileged user of the container bind and listen a TCP
// socket through io_uring: both records must reach Kafka. A bind through
// io_uring never passes sys_exit_bind, so on the tracepoint hook (the one
// this host attaches) only the cgroup post_bind program sees it, and the
// kernel loads that program only with CAP_NET_ADMIN. Then the same with
// no-net-admin.conf installed: the agent still starts, names what it loses
// in the journal and in bindwatch_capture_blind, and the io_uring bind is
// indeed not seen.
//
// The agent attaches its cgroup programs to the root of the cgroup tree it
// sees, the container's: the io_uring user runs in the container (a
// transient unit), as a host's processes would under a host's agent.
func TestShippedUnitSeesIoUring(t *testing.T) {
	// Where io_uring cannot bind (before Linux 6.11, as in the VM tier's
	// 6.1, or with kernel.io_uring_disabled), the hole this closes is not
	// there: said first, so that the VM tier's log says so too.
	if l, err := testenv.IoUringListen(); errors.Is(err, testenv.ErrIoUringUnsupported) {
		t.Skipf("SKIP: no bind through io_uring on this kernel, nothing to see: %v", err)
	} else if err != nil {
		t.Fatal(err)
	} else {
		l.Close()
	}
	inVM(t)
	testenv.RequireRoot(t)
	testenv.RequireTool(t, "systemd-nspawn", "systemd-container")
	testenv.RequireTool(t, "nsenter", "util-linux")
	if _, err := os.Stat("/sys/kernel/tracing/events"); err != nil {
		testenv.Unavailable(t, "needs tracefs mounted at /sys/kernel/tracing to bind into the container: %v", err)
	}
	c, root, events := bootShipped(t)

	t.Run("as shipped", func(t *testing.T) {
		c := c.in(t)
		pid := c.waitActive(t, "")
		if !c.hasCap(t, pid, unix.CAP_NET_ADMIN) {
			t.Errorf("the agent runs without CAP_NET_ADMIN: %s", c.capEff(t, pid))
		}
		res := c.ioUringListen(t)
		// Records reach Kafka in seq order: once the listen is there, its
		// bind record would have come before it.
		listen := events.wait(t, res, "listen", 20*time.Second)
		t.Logf("io_uring listen of pid %d uid %d port %d: %s", res.PID, res.UID, res.Port, listen)
		bind, ok := events.find(res, "bind")
		if !ok {
			t.Fatalf("io_uring bind of pid %d uid %d port %d: not in Kafka, though its listen is", res.PID, res.UID, res.Port)
		}
		t.Logf("io_uring bind   of pid %d uid %d port %d: %s", res.PID, res.UID, res.Port, bind)
		if bind.Cookie == 0 || bind.Cookie != listen.Cookie {
			t.Errorf("bind cookie %d, listen cookie %d: want one non-zero cookie", bind.Cookie, listen.Cookie)
		}
		if j := c.agentLog(t, pid); strings.Contains(j, "not seen on this host") {
			t.Errorf("the agent names blind spots:\n%s", j)
		}
	})

	t.Run("without CAP_NET_ADMIN", func(t *testing.T) {
		c := c.in(t)
		old := c.show()["MainPID"]
		dropIn := testenv.ReadFile(t, unitFile+".d/"+noNetAdminDropIn)
		if err := os.WriteFile(filepath.Join(root, "etc/systemd/system/bindwatch.service.d", noNetAdminDropIn), []byte(dropIn), 0o644); err != nil {
			t.Fatal(err)
		}
		c.run("systemctl", "daemon-reload")
		c.run("systemctl", "restart", "bindwatch")
		pid := c.waitActive(t, old)
		if c.hasCap(t, pid, unix.CAP_NET_ADMIN) || !c.hasCap(t, pid, unix.CAP_BPF) || !c.hasCap(t, pid, unix.CAP_PERFMON) {
			t.Fatalf("with %s the agent's capabilities are %s: want CAP_BPF and CAP_PERFMON, not CAP_NET_ADMIN", noNetAdminDropIn, c.capEff(t, pid))
		}
		// What it loses, in its own words.
		c.waitJournal(t, pid, "the blind spots", "IORING_OP_BIND", "not seen on this host")
		blind := c.blindMetric(t)
		t.Logf("bindwatch_capture_blind: %q", blind)
		if !strings.Contains(strings.Join(blind, "\n"), "IORING_OP_BIND") {
			t.Errorf("bindwatch_capture_blind does not name the io_uring bind: %q", blind)
		}
		res := c.ioUringListen(t)
		// Records reach Kafka in seq order: once the listen is there, a bind
		// record would have come before it.
		listen := events.wait(t, res, "listen", 20*time.Second)
		t.Logf("io_uring listen of pid %d port %d: %s", res.PID, res.Port, listen)
		if bind, ok := events.find(res, "bind"); ok {
			t.Errorf("the io_uring bind was seen without CAP_NET_ADMIN (%s): %s's comment is stale", bind, noNetAdminDropIn)
		} else {
			t.Logf("io_uring bind of pid %d port %d: not seen, as the journal says", res.PID, res.Port)
		}
	})
}

// bootShipped boots systemd in a container with the unit as shipped, the
// real agent as ExecStart (the binary at /opt/bindwatch/bindwatch, this test
// binary at /opt/bindwatch/standin) and the shipped configuration, with only
// the brokers (devkafka on the host) and metrics.listen set in a drop-in.
// It returns the container, its root, and what the agent publishes, read
// from the topic as it comes.
func bootShipped(t *testing.T) (*container, string, *events) {
	t.Helper()
	return bootShippedWith(t, "bindwatch-iouring-"+strconv.Itoa(os.Getpid()), nil)
}

// bootShippedWith is bootShipped with the machine named machine and, in
// its root, the files given too (mode 0600: the caller loosens them).
func bootShippedWith(t *testing.T, machine string, extra map[string]string) (*container, string, *events) {
	t.Helper()
	dir := testenv.WorldReadableDir(t)
	bin := bindwatchBinary(t)
	brokers := testenv.StartDevkafka(t, dir, "../cmd/devkafka")
	root := filepath.Join(dir, "root")
	keepTracefsPerms(t)
	unit := strings.ReplaceAll(readUnit(t), "/usr/bin/bindwatch ", "/opt/bindwatch/bindwatch ")
	files := map[string]string{
		"etc/bindwatch/bindwatch.yaml": testenv.ReadFile(t, "../configs/bindwatch.yaml"),
		"etc/systemd/system/bindwatch.service.d/zz-test.conf": "[Service]\nEnvironment=BINDWATCH_KAFKA_BROKERS=" + brokers +
			"\nEnvironment=BINDWATCH_METRICS_LISTEN=unix:/run/bindwatch/metrics.sock\n",
	}
	maps.Copy(files, extra)
	layOutRoot(t, root, unit, files)
	if err := os.Chmod(filepath.Join(root, "etc/bindwatch/bindwatch.yaml"), 0o644); err != nil {
		t.Fatal(err)
	}
	copyExecutable(t, bin, filepath.Join(root, "opt/bindwatch/bindwatch"))
	bpffs := filepath.Join(dir, "bpffs")
	testenv.Mount(t, "bpf", bpffs, "bpf", 0, "mode=0700")
	// The agent pins its links: nothing stays attached after the test.
	t.Cleanup(func() {
		if err := bpf.RemovePins(filepath.Join(bpffs, "bindwatch")); err != nil {
			t.Errorf("removing the container's pins: %v", err)
		}
	})
	testenv.Mount(t, "/usr", filepath.Join(root, "usr"), "", unix.MS_BIND, "")
	if err := unix.Mount("", filepath.Join(root, "usr"), "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
		t.Fatal(err)
	}
	c := &container{t: t, Container: testenv.BootContainer(t, root, bpffs, machine)}
	return c, root, consume(t, bin, brokers)
}

// in is c for a subtest: its commands fail t, not the parent.
func (c *container) in(t *testing.T) *container { return &container{t: t, Container: c.Container} }

// waitActive waits until bindwatch.service is active with a main pid other
// than old, and returns it.
func (c *container) waitActive(t *testing.T, old string) string {
	t.Helper()
	c.waitFor("bindwatch started", func(p map[string]string) bool {
		return p["ActiveState"] == "failed" || p["ActiveState"] == "active" && p["MainPID"] != old && p["MainPID"] != "0"
	})
	p := c.show()
	if p["ActiveState"] != "active" || p["SubState"] != "running" {
		t.Fatalf("bindwatch is %s/%s (%s), want active/running\n%s", p["ActiveState"], p["SubState"], p["Result"],
			c.run("journalctl", "-u", "bindwatch", "--no-pager"))
	}
	return p["MainPID"]
}

// capEff is the container pid's effective capability set.
func (c *container) capEff(t *testing.T, pid string) string {
	t.Helper()
	v, ok := fieldOf(c.run("cat", "/proc/"+pid+"/status"), "CapEff")
	if !ok {
		t.Fatalf("no CapEff for pid %s", pid)
	}
	return v
}

func (c *container) hasCap(t *testing.T, pid string, capability int) bool {
	t.Helper()
	m, err := strconv.ParseUint(c.capEff(t, pid), 16, 64)
	if err != nil {
		t.Fatal(err)
	}
	return m&(1<<capability) != 0
}

// agentLog is what the agent's process wrote to the journal.
func (c *container) agentLog(t *testing.T, pid string) string {
	t.Helper()
	return c.run("journalctl", "--no-pager", "-o", "cat", "_PID="+pid)
}

// waitJournal waits (10 s) until the agent pid's journal holds want, then
// logs its lines that hold show.
func (c *container) waitJournal(t *testing.T, pid, what, want, show string) {
	t.Helper()
	var log string
	testenv.Eventually(t, what+" in the journal", 10*time.Second, func() error {
		if log = c.agentLog(t, pid); !strings.Contains(log, want) {
			return fmt.Errorf("no %q yet:\n%s", want, log)
		}
		return nil
	})
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, show) {
			t.Logf("journal: %s", line)
		}
	}
}

// blindMetric lists the what labels of bindwatch_capture_blind, read from
// the agent's metrics socket through the container's root.
func (c *container) blindMetric(t *testing.T) []string {
	t.Helper()
	sock := fmt.Sprintf("/proc/%d/root/run/bindwatch/metrics.sock", c.Init)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}}
	resp, err := client.Get("http://agent/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var what []string
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, `bindwatch_capture_blind{what="`); ok {
			if w, _, ok := strings.Cut(rest, `"}`); ok {
				what = append(what, w)
			}
		}
	}
	return what
}

// ioUringListen runs the test binary as nobody in a transient unit of the
// container (so in the container's cgroup tree) to bind and listen through
// io_uring, and returns what it did. A kernel or sysctl that refuses
// io_uring to that user skips the test.
func (c *container) ioUringListen(t *testing.T) ioUringResult {
	t.Helper()
	out := c.run("systemd-run", "--wait", "--pipe", "--quiet", "--uid=nobody", "--setenv="+ioUringVar+"=1", "/opt/bindwatch/standin")
	var res ioUringResult
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &res); err != nil {
		t.Fatalf("io_uring child: %q: %v", out, err)
	}
	if res.Unsupported {
		t.Skipf("SKIP: an unprivileged user cannot bind through io_uring here: %s", res.Err)
	}
	if res.Err != "" {
		t.Fatalf("io_uring child: %s", res.Err)
	}
	return res
}

// record is what these tests read of an event `bindwatch consume` prints.
type record struct {
	Seq      int64  `json:"seq"`
	Kind     string `json:"kind"`
	PID      int    `json:"pid"`
	UID      int    `json:"uid"`
	Comm     string `json:"comm"`
	Protocol string `json:"protocol"`
	Addr     string `json:"addr"`
	Port     uint16 `json:"port"`
	Cookie   int64  `json:"cookie"`
	// The workload, for workload_test.go.
	CgroupPath     *string `json:"cgroup_path"`
	ContainerID    *string `json:"container_id"`
	ContainerName  *string `json:"container_name"`
	Image          *string `json:"image"`
	ImageDigest    *string `json:"image_digest"`
	WorkloadSource *string `json:"workload_source"`
}

// workload prints r's workload fields, null where absent.
func (r record) workload() string {
	s := func(p *string) string {
		if p == nil {
			return "null"
		}
		return strconv.Quote(*p)
	}
	return fmt.Sprintf("cgroup_path %s container_id %s container_name %s image %s image_digest %s workload_source %s",
		s(r.CgroupPath), s(r.ContainerID), s(r.ContainerName), s(r.Image), s(r.ImageDigest), s(r.WorkloadSource))
}

// waitPort waits for the first record of kind of a TCP socket on port.
func (e *events) waitPort(t *testing.T, port int, kind string, timeout time.Duration) record {
	t.Helper()
	var r record
	testenv.Eventually(t, fmt.Sprintf("a %s record of port %d in Kafka", kind, port), timeout, func() error {
		e.mu.Lock()
		defer e.mu.Unlock()
		for _, rec := range e.recs {
			if int(rec.Port) == port && rec.Kind == kind && rec.Protocol == "TCP" {
				r = rec
				return nil
			}
		}
		return fmt.Errorf("%d records read, none a %s of port %d", len(e.recs), kind, port)
	})
	return r
}

func (r record) String() string {
	return fmt.Sprintf("seq %d %s pid %d uid %d comm %q %s %s:%d cookie %d", r.Seq, r.Kind, r.PID, r.UID, r.Comm, r.Protocol, r.Addr, r.Port, r.Cookie)
}

// events are the records read from the topic so far.
type events struct {
	mu   sync.Mutex
	recs []record
}

// find returns the first record of kind for the child's socket: its TCP
// port and its user (the host's other binds may use the port too).
func (e *events) find(child ioUringResult, kind string) (record, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, r := range e.recs {
		if r.Port == child.Port && r.Kind == kind && r.Protocol == "TCP" && r.UID == child.UID {
			return r, true
		}
	}
	return record{}, false
}

func (e *events) wait(t *testing.T, child ioUringResult, kind string, timeout time.Duration) record {
	t.Helper()
	var r record
	port := child.Port
	testenv.Eventually(t, fmt.Sprintf("a %s record of port %d in Kafka", kind, port), timeout, func() error {
		var ok bool
		if r, ok = e.find(child, kind); !ok {
			e.mu.Lock()
			n := len(e.recs)
			e.mu.Unlock()
			return fmt.Errorf("%d records read, none a %s of port %d", n, kind, port)
		}
		return nil
	})
	return r
}

// consume reads the topic from the beginning with `bindwatch consume` until
// the test ends, keeping the records of 127.0.0.1 (what the child binds):
// the host's other binds reach the topic too.
func consume(t *testing.T, bin, brokers string) *events {
	t.Helper()
	cmd := exec.Command(bin, "consume", "--brokers", brokers, "--topic", "bindwatch.bind-events", "--from-beginning")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	e := &events{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		for sc.Scan() {
			var r record
			if json.Unmarshal(sc.Bytes(), &r) == nil && r.Addr == "127.0.0.1" {
				e.mu.Lock()
				e.recs = append(e.recs, r)
				e.mu.Unlock()
			}
		}
		io.Copy(io.Discard, stdout)
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(unix.SIGTERM)
		<-done
		cmd.Wait()
		if t.Failed() {
			t.Logf("bindwatch consume's stderr:\n%s", stderr.String())
		}
	})
	return e
}

func copyExecutable(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o755); err != nil {
		t.Fatal(err)
	}
}
