// Command loadgen binds sockets in a tight loop (socket, bind to port 0,
// close) and prints the rate: the workload for measuring what bindwatch adds
// to the bind path, and a steady source of events for pipeline tests. With
// -proto listen each TCP socket also listens before it is closed: the
// listen and close path. With -proto getppid it makes no socket at all but
// calls getppid(2) in the same loop: a syscall bindwatch never reports, to
// show what a hook costs the host's other system calls (the syscall
// tracepoints put every call of every task on the kernel's slow path).
//
//	loadgen [-proto udp|tcp|listen|getppid] [-duration 5s] [-rate 0] [-fail]
//
// It prints one line: for sockets "binds=N failed=N seconds=S rate=R/s
// cpu_ns_per_bind=C cpu_ns_per_op=C", for getppid "calls=N seconds=S rate=R/s
// cpu_ns_per_op=C"; CPU time is user plus system time of the whole process.
package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	proto := flag.String("proto", "udp", "udp, tcp, listen (tcp, then listen before close), or getppid (no socket: a getppid(2) loop)")
	duration := flag.Duration("duration", 5*time.Second, "how long to run")
	rate := flag.Int("rate", 0, "binds per second to aim for; 0 means as fast as possible")
	fail := flag.Bool("fail", false, "bind to an address that is not local, so every bind fails with EADDRNOTAVAIL")
	flag.Parse()

	sotype, listen, getppid := unix.SOCK_DGRAM, false, false
	switch *proto {
	case "getppid":
		getppid = true
	case "udp":
	case "tcp":
		sotype = unix.SOCK_STREAM
	case "listen":
		sotype, listen = unix.SOCK_STREAM, true
	default:
		fmt.Fprintf(os.Stderr, "loadgen: -proto %q: want udp, tcp, listen or getppid\n", *proto)
		os.Exit(2)
	}
	addr := &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}
	if *fail {
		addr.Addr = [4]byte{192, 0, 2, 1} // TEST-NET-1: never local
	}

	var interval time.Duration
	if *rate > 0 {
		interval = time.Second / time.Duration(*rate)
	}
	start := time.Now()
	end := start.Add(*duration)
	next := start
	var n, errs uint64
	for {
		// Checking the clock every 256 binds keeps it off the measured path.
		if n&255 == 0 && time.Now().After(end) {
			break
		}
		if interval > 0 {
			next = next.Add(interval)
			if d := time.Until(next); d > 0 {
				time.Sleep(d)
			}
		}
		if getppid {
			unix.Getppid()
			n++
			continue
		}
		fd, err := unix.Socket(unix.AF_INET, sotype|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			fmt.Fprintln(os.Stderr, "loadgen: socket:", err)
			os.Exit(1)
		}
		if err := unix.Bind(fd, addr); err != nil {
			errs++
		} else if listen {
			if err := unix.Listen(fd, 1); err != nil {
				errs++
			}
		}
		unix.Close(fd)
		n++
	}
	elapsed := time.Since(start)
	// CPU time per bind is steadier than the rate on a shared machine: time
	// spent waiting for the CPU does not count.
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen: getrusage:", err)
		os.Exit(1)
	}
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	perOp := float64(cpu.Nanoseconds()) / float64(n)
	if getppid {
		fmt.Printf("calls=%d seconds=%.3f rate=%.0f/s cpu_ns_per_op=%.0f\n", n, elapsed.Seconds(), float64(n)/elapsed.Seconds(), perOp)
		return
	}
	fmt.Printf("binds=%d failed=%d seconds=%.3f rate=%.0f/s cpu_ns_per_bind=%.0f cpu_ns_per_op=%.0f\n", n, errs, elapsed.Seconds(),
		float64(n)/elapsed.Seconds(), perOp, perOp)
	if !*fail && errs > 0 {
		os.Exit(1)
	}
}
