package bpf

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestRingOrderAcrossCPUs measures how far the ring's order strays from the
// seq order, and what Read's read-ahead leaves of it. A program takes its
// seq (an atomic add) before it reserves its ring space, so two CPUs binding
// at once may reserve in the other order: the ring then holds seq n+1
// before n. Every record still arrives (the test fails if one is missing);
// what it logs is how many arrived after a higher seq, by how many seqs and
// records, and how late: read one record at a time (the ring's own order),
// then readAhead at a time (what Read returns).
func TestRingOrderAcrossCPUs(t *testing.T) {
	if runtime.NumCPU() < 2 {
		t.Skip("needs two CPUs")
	}
	for _, n := range []int{1, readAhead} {
		t.Run(fmt.Sprintf("read ahead %d", n), func(t *testing.T) {
			defer func(n int) { readAhead = n }(readAhead)
			readAhead = n
			ringOrder(t)
		})
	}
}

func ringOrder(t *testing.T) {
	c := loadCapturer(t, Options{Filter: Filter{PID: uint32(os.Getpid())}})
	first := c.seq()
	stop := make(chan struct{})
	var binds atomic.Uint64
	var wg sync.WaitGroup
	for cpu := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			var set unix.CPUSet
			set.Set(cpu)
			if err := unix.SchedSetaffinity(0, &set); err != nil {
				t.Error(err)
				return
			}
			sa := &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}
			for {
				select {
				case <-stop:
					return
				default:
				}
				fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
				if err != nil {
					t.Error(err)
					return
				}
				unix.Bind(fd, sa)
				unix.Close(fd)
				binds.Add(1)
			}
		}()
	}
	var (
		n, late, maxSeqs, maxRecs     uint64
		maxLateNS                     uint64
		maxSeen, maxSeenNS, maxSeenAt uint64
		readErr                       error
	)
	done := make(chan struct{})
	var last atomic.Uint64
	go func() {
		// Reading while they bind, as the agent does: the ring never
		// fills, so every numbered record is in it.
		defer close(done)
		var ev Event
		for {
			if end := last.Load(); end != 0 && n == end-first {
				return
			}
			c.rd.SetDeadline(time.Now().Add(2 * time.Second))
			if err := c.rd.Read(&ev); err != nil {
				if !errors.Is(err, os.ErrDeadlineExceeded) {
					readErr = err
				}
				return
			}
			c.rd.CommitAll()
			if ev.Seq < first {
				continue
			}
			n++
			if ev.Seq < maxSeen {
				late++
				maxSeqs = max(maxSeqs, maxSeen-ev.Seq)
				maxRecs = max(maxRecs, n-maxSeenAt)
				if maxSeenNS > ev.BootNS {
					maxLateNS = max(maxLateNS, maxSeenNS-ev.BootNS)
				}
				continue
			}
			maxSeen, maxSeenNS, maxSeenAt = ev.Seq, ev.BootNS, n
		}
	}()
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()
	last.Store(c.seq())
	<-done
	if readErr != nil {
		t.Fatal(readErr)
	}
	d, _ := c.probe.Drops()
	t.Logf("%d binds on 2 CPUs, %d records (seqs %d..%d, drops %+v): %d (%.4f%%) came after a higher seq; at most %d seqs and %d records behind, stamped at most %v before the record that overtook them",
		binds.Load(), n, first, last.Load()-1, d, late, 100*float64(late)/float64(max(n, 1)), maxSeqs, maxRecs, time.Duration(maxLateNS))
	if n+d.RingReserved+d.RingBufferFull != last.Load()-first {
		t.Fatalf("read %d records of the %d numbered", n, last.Load()-first)
	}
}
