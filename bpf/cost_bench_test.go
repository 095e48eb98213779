package bpf

import (
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/bindwatch/bindwatch/test/testenv"
)

// BenchmarkProgramCost measures what the loaded programs cost the kernel
// per reported bind, with the kernel's own BPF run-time statistics: every
// program's run time over the benchmark, divided by the binds made. Wall
// time per op is the whole socket+bind+close loop; bpf-ns/bind is the
// programs' part of it, which a noisy machine disturbs far less than the
// loop's time. The hooks are BINDWATCH_TEST_HOOKS's (the VM tier sets all
// three), else auto.
//
//	sudo go test -run '^$' -bench ProgramCost -benchtime 200000x ./bpf
func BenchmarkProgramCost(b *testing.B) {
	testenv.RequireRoot(b)
	for _, hook := range testHooks(b) {
		for _, listeners := range []bool{false, true} {
			name := string(hook) + "/binds"
			if listeners {
				name = string(hook) + "/listeners"
			}
			b.Run(name, func(b *testing.B) { programCost(b, hook, listeners) })
		}
	}
}

func programCost(b *testing.B, hook Hook, listeners bool) {
	stats, err := ebpf.EnableStats(unix.BPF_STATS_RUN_TIME)
	if err != nil {
		b.Skipf("BPF run-time statistics unavailable: %v", err)
	}
	defer stats.Close()

	// Only the benchmark's port is reported, so other binds on the machine
	// add runs (filtered early) but no records.
	port := freePort(b, udp4)
	p, done := loadDrained(b, Options{Hook: hook, Filter: Filter{Ports: []uint16{port}, Listeners: listeners}})
	defer done()

	before := programRuntimes(b, p)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	sa := &unix.SockaddrInet4{Port: int(port), Addr: [4]byte{127, 0, 0, 1}}
	b.ResetTimer()
	for range b.N {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			b.Fatal(err)
		}
		if err := unix.Bind(fd, sa); err != nil {
			b.Fatal(err)
		}
		unix.Close(fd)
	}
	b.StopTimer()
	after := programRuntimes(b, p)
	var total time.Duration
	var each []string
	for name, d := range after {
		if d -= before[name]; d > 0 {
			total += d
			each = append(each, fmt.Sprintf("%s %.0f", name, float64(d.Nanoseconds())/float64(b.N)))
		}
	}
	slices.Sort(each)
	b.Logf("ns per bind: %s", strings.Join(each, ", "))
	b.ReportMetric(float64(total.Nanoseconds())/float64(b.N), "bpf-ns/bind")
}

// programRuntimes is every loaded program's total run time so far.
func programRuntimes(tb testing.TB, p *Probe) map[string]time.Duration {
	tb.Helper()
	out := map[string]time.Duration{}
	for _, c := range append([]*ebpf.Collection{p.coll}, p.extra...) {
		for name, prog := range c.Programs {
			st, err := prog.Stats()
			if err != nil {
				tb.Fatal(err)
			}
			out[name] += st.Runtime
		}
	}
	return out
}
