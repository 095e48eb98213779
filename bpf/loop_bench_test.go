package bpf

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/bindwatch/bindwatch/test/testenv"
)

// BenchmarkBindLoop is test/overhead.sh's loop measurement in a test
// binary, so that the VM tier can run it where fexit and kprobe load: what
// capture costs the task that binds. A loop runs on a locked thread; its
// thread CPU time per operation is taken alone and with a contender
// attached, in pairs whose order alternates round by round, so drift hits
// both sides alike. ns/op is the median with the contender, ratio the
// median of the per-pair ratios (ratio-min and ratio-max their range).
//
// BINDWATCH_BENCH_STOPPED=1 adds what a stopped agent leaves behind
// (stoppedAgentContenders): its pinned capture within the lease, after the
// lease, and after bindwatch-unpin.timer's unpin.
//
// Loops: udp (socket, bind 127.0.0.1 port 0, close: loadgen's) and getppid
// (a system call nothing reports: what the rest of the host pays).
// Contenders: each hook of BINDWATCH_TEST_HOOKS, else auto, loaded in this
// process with no filter, every record read on another thread as snoop
// does; then each peer of BINDWATCH_BENCH_PEERS (comma-separated
// NAME=COMMAND, the command's arguments split on spaces), its output read
// into nothing. Each measurement runs the loop for loopCPU of CPU time, so
// b.N means nothing: give -benchtime 1x. A peer that writes to a pipe
// through stdio buffers its output, and its first line says it attached:
// run it under `stdbuf -oL`, as test/overhead.sh runs bpftrace with -B line.
//
//	sudo BINDWATCH_BENCH_PEERS='bindsnoop=stdbuf -oL /usr/sbin/bindsnoop' go test -run '^$' -bench BindLoop -benchtime 1x ./bpf
//	BINDWATCH_VM_FILES='/usr/bin/stdbuf /usr/libexec/coreutils/libstdbuf.so /usr/sbin/bindsnoop' \
//	BINDWATCH_BENCH_PEERS='bindsnoop=stdbuf -oL /usr/sbin/bindsnoop' \
//	  test/vm/run.sh -test.run '^$' -test.bench BindLoop -test.benchtime 1x
func BenchmarkBindLoop(b *testing.B) {
	testenv.RequireRoot(b)
	var contenders []loopContender
	for _, h := range testHooks(b) {
		// No filter: every bind is reported, as by snoop.
		contenders = append(contenders, loopContender{string(h), func(tb testing.TB) func() {
			_, done := loadDrained(tb, Options{Hook: h})
			return done
		}})
	}
	for _, peer := range strings.Split(os.Getenv("BINDWATCH_BENCH_PEERS"), ",") {
		if peer = strings.TrimSpace(peer); peer == "" {
			continue
		}
		name, command, ok := strings.Cut(peer, "=")
		args := strings.Fields(command)
		if !ok || name == "" || len(args) == 0 {
			b.Fatalf("BINDWATCH_BENCH_PEERS: %q is not NAME=COMMAND", peer)
		}
		contenders = append(contenders, loopContender{"peer=" + name, func(tb testing.TB) func() { return startPeer(tb, args) }})
	}
	if os.Getenv("BINDWATCH_BENCH_STOPPED") == "1" {
		contenders = append(contenders, stoppedAgentContenders()...)
	}
	for _, loop := range benchLoops {
		for _, c := range contenders {
			b.Run(loop.name+"/"+c.name, func(b *testing.B) { loopPairs(b, loop, c) })
		}
	}
}

// loopRounds is how many alone/with pairs each contender gets.
const loopRounds = 5

type benchLoop struct {
	name string
	op   func(testing.TB)
}

var benchLoops = []benchLoop{
	{"udp", func(tb testing.TB) {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			tb.Fatal(err)
		}
		if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
			tb.Fatal(err)
		}
		unix.Close(fd)
	}},
	{"getppid", func(testing.TB) { unix.Getppid() }},
}

// loopContender attaches something that watches binds and returns how to
// detach it.
type loopContender struct {
	name   string
	attach func(testing.TB) (detach func())
}

func loopPairs(b *testing.B, loop benchLoop, c loopContender) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	b.StopTimer()
	var alone, with, ratios []float64
	for round := range loopRounds {
		var a, w float64
		if round%2 == 0 {
			a = threadCPUPerOp(b, loop)
			detach := c.attach(b)
			w = threadCPUPerOp(b, loop)
			detach()
		} else {
			detach := c.attach(b)
			w = threadCPUPerOp(b, loop)
			detach()
			a = threadCPUPerOp(b, loop)
		}
		alone, with, ratios = append(alone, a), append(with, w), append(ratios, w/a)
	}
	b.Logf("%s with %s: alone %.0f ns/op, with %.0f ns/op, ratio %.3f (%.3f-%.3f) over %d pairs of %v CPU each",
		loop.name, c.name, median(alone), median(with), median(ratios), slices.Min(ratios), slices.Max(ratios), loopRounds, loopCPU)
	b.ReportMetric(median(with), "ns/op")
	b.ReportMetric(median(alone), "alone-ns/op")
	b.ReportMetric(median(ratios), "ratio")
	b.ReportMetric(slices.Min(ratios), "ratio-min")
	b.ReportMetric(slices.Max(ratios), "ratio-max")
}

// loopCPU is the CPU time of one measurement: long enough that a noisy
// host and the emulated VM's clock average out.
const loopCPU = 300 * time.Millisecond

// threadCPUPerOp runs loop for loopCPU of the calling thread's CPU time and
// returns that time per operation: waiting for a busy CPU does not count.
// The clock is read every 64 operations, alike alone and attached.
func threadCPUPerOp(tb testing.TB, loop benchLoop) float64 {
	start := threadCPU(tb)
	for n := 64; ; n += 64 {
		for range 64 {
			loop.op(tb)
		}
		if d := threadCPU(tb) - start; d >= loopCPU {
			return float64(d) / float64(n)
		}
	}
}

func threadCPU(tb testing.TB) time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ts.Nano())
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// startPeer runs a peer tool until detach, reading its output into nothing
// through a pipe as a terminal would. It counts as attached once it printed
// its first line (libbpf-tools print their header after attaching), plus a
// second for tools that print before; one that prints nothing within 30 s
// or exits skips the benchmark, with what it said.
func startPeer(tb testing.TB, args []string) func() {
	cmd := exec.Command(args[0], args[1:]...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	// A pipe of our own rather than StdoutPipe: it is read until the peer
	// closes it, never closed under the reader by Wait.
	r, w, err := os.Pipe()
	if err != nil {
		tb.Fatal(err)
	}
	cmd.Stdout = w
	err = cmd.Start()
	w.Close()
	if err != nil {
		r.Close()
		tb.Skipf("peer %s did not start: %v", args[0], err)
	}
	first := make(chan error, 1)
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		br := bufio.NewReader(r)
		_, err := br.ReadString('\n')
		first <- err
		io.Copy(io.Discard, br)
	}()
	stop := func() {
		cmd.Process.Signal(syscall.SIGINT)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		<-copied
		r.Close()
	}
	select {
	case err := <-first:
		if err != nil {
			stop()
			tb.Skipf("peer %s exited before printing a line: %s", args[0], firstAndLast(stderr.String()))
		}
	case <-time.After(30 * time.Second):
		stop()
		tb.Skipf("peer %s printed nothing in 30 s: %s", args[0], firstAndLast(stderr.String()))
	}
	time.Sleep(time.Second)
	return stop
}

// firstAndLast is what a peer's error output says, without a verifier log.
func firstAndLast(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) <= 2 {
		return strings.Join(lines, " / ")
	}
	return lines[0] + " / ... / " + lines[len(lines)-1]
}

// stoppedAgentContenders are the states of a stopped agent's capture, each
// made afresh for every measurement as the agent leaves it: loaded with the
// agent's filter (every bind, listeners, the user budget) and pinned, then
// closed, so only the pins hold the programs.
//   - stopped-in-lease: within capture.orphan_timeout the programs report
//     into the pinned ring that nobody reads;
//   - stopped-lease-expired: after it, they return at once and count the
//     skip (the lease is set in the past, as 5 minutes would leave it);
//   - stopped-after-timer: then UnpinIfOrphaned, what the timer runs: no
//     program left, so the ratio is the noise of the pairing itself.
func stoppedAgentContenders() []loopContender {
	stopped := func(tb testing.TB, expire, unpin bool) func() {
		dir := fmt.Sprintf("/sys/fs/bpf/bindwatch-bench-stopped-%d", os.Getpid())
		p, err := Load(Options{PinDir: dir, OrphanTimeout: 5 * time.Minute,
			Filter: Filter{Listeners: true, BudgetPerSec: 20000, BudgetBurst: 2000}})
		if err != nil {
			tb.Fatal(err)
		}
		if expire {
			if err := p.coll.Maps["lease"].Put(uint32(0), uint64(1)); err != nil {
				tb.Fatal(err)
			}
		}
		p.Close()
		if unpin {
			if v, err := UnpinIfOrphaned(dir); err != nil || !v.Unpinned {
				tb.Fatalf("unpin after the lease: %+v, %v", v, err)
			}
		}
		return func() {
			if err := RemovePins(dir); err != nil {
				tb.Fatal(err)
			}
		}
	}
	return []loopContender{
		{"stopped-in-lease", func(tb testing.TB) func() { return stopped(tb, false, false) }},
		{"stopped-lease-expired", func(tb testing.TB) func() { return stopped(tb, true, false) }},
		{"stopped-after-timer", func(tb testing.TB) func() { return stopped(tb, true, true) }},
	}
}
