package inventory

import (
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/bindwatch/bindwatch/bpf"
	"github.com/bindwatch/bindwatch/test/testenv"
)

// listenersInNamespaces opens per listeners TCP listeners in each of n new
// network namespaces (each made by a thread that then exits: the sockets
// keep their namespace alive) and returns their fds.
func listenersInNamespaces(b *testing.B, n, per int) []int {
	b.Helper()
	var fds []int
	for range n {
		done := make(chan error, 1)
		var mine []int
		body := func() {
			if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
				done <- err
				return
			}
			for range per {
				fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
				if err != nil {
					done <- err
					return
				}
				if err := unix.Listen(fd, 16); err != nil {
					done <- err
					return
				}
				mine = append(mine, fd)
			}
			done <- nil
		}
		go testenv.OnDisposableThread(body)
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		fds = append(fds, mine...)
	}
	return fds
}

// BenchmarkInventory10k lists 10 000 listeners in 100 network namespaces,
// held by this process, with the BPF iterator and with the /proc fallback:
// time per pass, and the heap a pass allocates. The fallback sees none of
// them (it reaches a namespace only through a process inside it): its
// "sockets" metric says so.
//
//	go test -run '^$' -bench Inventory10k -benchtime 5x ./pipeline/inventory/
func BenchmarkInventory10k(b *testing.B) {
	testenv.RequireRoot(b)
	probe, err := bpf.LoadInventory()
	if err != nil {
		testenv.Unavailable(b, "the BPF task_file iterator does not load: %v", err)
	}
	defer probe.Close()
	fds := listenersInNamespaces(b, 100, 100)
	defer func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}()
	for _, src := range []Source{IterSource{Probe: probe}, ProcSource{Root: "/proc"}} {
		b.Run(src.Name(), func(b *testing.B) {
			b.ReportAllocs()
			var sockets int
			var took time.Duration
			for b.Loop() {
				start := time.Now()
				snap, err := Take(src, nopSequencer{}, bpf.Filter{PID: uint32(os.Getpid())}, time.Now())
				if err != nil {
					b.Fatal(err)
				}
				took += time.Since(start)
				sockets = len(snap.Records) - 1
			}
			// /proc reaches a namespace only through a process in it: these
			// are held from other namespaces, so the fallback misses them.
			if src.Name() == SourceBPFIter && sockets != len(fds) {
				b.Fatalf("%d sockets listed, want %d", sockets, len(fds))
			}
			b.ReportMetric(float64(sockets), "sockets")
		})
	}
}
