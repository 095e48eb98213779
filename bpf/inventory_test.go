package bpf

import (
	"net/netip"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/bindwatch/bindwatch/test/testenv"
	"golang.org/x/sys/unix"
)

func TestInventory(t *testing.T) {
	for _, hook := range testHooks(t) {
		t.Run(string(hook), func(t *testing.T) { testInventory(t, hook) })
	}
}

func testInventory(t *testing.T, hook Hook) {
	c := listenerCapturer(t, hook)
	// A listener, passed to a child process as well: two holders.
	lsn := tcp6.open(t)
	listenFD(t, lsn, 9)
	f := os.NewFile(uintptr(lsn), "listener")
	// The test binary itself, waiting on its stdin: the VM guest has no sleep.
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childHoldVar+"=1")
	cmd.ExtraFiles = []*os.File{f}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close() })
	child := testenv.Start(t, cmd, 10*time.Second)
	// A UDP server, a connected UDP client and a TCP socket that only bound.
	srv := udp4.open(t)
	if err := bindAddr(srv, unix.AF_INET, netip.MustParseAddrPort("127.0.0.1:0")); err != nil {
		t.Fatal(err)
	}
	cl := udp4.open(t)
	if err := unix.Connect(cl, &unix.SockaddrInet4{Port: int(localAddr(t, srv).Port()), Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	bound := tcp4.open(t)
	if err := bindAddr(bound, unix.AF_INET, netip.MustParseAddrPort("127.0.0.1:0")); err != nil {
		t.Fatal(err)
	}

	byCookie := map[uint64][]InventoryEntry{}
	if err := c.probe.Inventory(func(e *InventoryEntry) error {
		byCookie[e.Cookie] = append(byCookie[e.Cookie], *e)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	holders := byCookie[sockCookie(t, lsn)]
	pids := map[uint32]bool{}
	for _, h := range holders {
		pids[h.PID] = true
		if h.State != TCPListen || h.Port != localAddr(t, lsn).Port() || h.Protocol != ProtoTCP || h.Family != AFInet6 ||
			h.Backlog != 9 || h.NetNS != nsInode(t, os.Getpid(), "net") || h.EffectiveAddr() != netip.IPv6Unspecified() {
			t.Errorf("listener entry %+v", h)
		}
	}
	if len(pids) != 2 || !pids[uint32(os.Getpid())] || !pids[uint32(child.Pid())] {
		t.Errorf("listener holders %v, want this process %d and the child %d", pids, os.Getpid(), child.Pid())
	}
	if e := byCookie[sockCookie(t, srv)]; len(e) != 1 || e[0].Protocol != ProtoUDP || e[0].Port != localAddr(t, srv).Port() || e[0].ExplicitPort {
		t.Errorf("UDP server entries %+v", e)
	}
	for name, fd := range map[string]int{"connected UDP client": cl, "bound-only TCP socket": bound} {
		if e := byCookie[sockCookie(t, fd)]; len(e) != 0 {
			t.Errorf("%s in the inventory: %+v", name, e)
		}
	}

	before := c.seq()
	first, err := c.probe.ReserveSeq(5)
	if err != nil {
		t.Fatal(err)
	}
	if first != before || c.seq() != before+5 {
		t.Fatalf("ReserveSeq(5) gave %d with the counter at %d, now %d", first, before, c.seq())
	}

	// Reservations from several goroutines at once (the sealer, the
	// inventory, heartbeats) get ranges that do not overlap: the program
	// leaves each range's first seq in one map slot.
	const goroutines, each, size = 4, 500, 3
	firsts := make(chan uint64, goroutines*each)
	var wg sync.WaitGroup
	for range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				f, err := c.probe.ReserveSeq(size)
				if err != nil {
					t.Error(err)
					return
				}
				firsts <- f
			}
		}()
	}
	wg.Wait()
	close(firsts)
	seen := map[uint64]bool{}
	for f := range firsts {
		if seen[f] {
			t.Fatalf("two concurrent reservations both began at seq %d", f)
		}
		seen[f] = true
	}
}
