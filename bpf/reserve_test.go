package bpf

import (
	"errors"
	"os"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TestBindStormLeavesRoomForListeners: nobody commits the ring (an agent
// whose every buffer is full), root binds until binds are refused, and a
// listen and its close still find room: the last ListenerReserve-th of the
// ring is theirs. Each refused bind is counted by kind and takes its
// sequence number (a gap), as a full ring's drops do.
func TestBindStormLeavesRoomForListeners(t *testing.T) {
	for _, hook := range testHooks(t) {
		t.Run(string(hook), func(t *testing.T) {
			// TCP binds to one port, never listened on: a UDP bind to a
			// port of its own would make a UDP server, whose release is
			// reported as a close.
			stormPort, tcpPort := freePort(t, tcp4), freePort(t, tcp4)
			const ring = 64 << 10
			recordBytes := 8 + (int(unsafe.Sizeof(bindwatchSockEvent{}))+7)&^7
			c := loadCapturer(t, Options{Hook: hook, RingBufferBytes: ring,
				Filter: Filter{Listeners: true, Ports: []uint16{stormPort, tcpPort}}})
			sa := &unix.SockaddrInet4{Port: int(stormPort), Addr: [4]byte{127, 0, 0, 1}}
			first := c.seq()
			binds := 0
			for ; binds < 2*ring/recordBytes; binds++ {
				fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
				if err != nil {
					t.Fatal(err)
				}
				if err := unix.Bind(fd, sa); err != nil {
					t.Fatal(err)
				}
				unix.Close(fd)
			}
			d, err := c.probe.Drops()
			if err != nil {
				t.Fatal(err)
			}
			if d.RingReserved == 0 || d.RingBufferFull != 0 {
				t.Fatalf("after %d binds into a %d-byte ring nobody reads: %+v; want binds refused, the ring not full", binds, ring, d)
			}

			fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				t.Fatal(err)
			}
			if err := unix.Bind(fd, &unix.SockaddrInet4{Port: int(tcpPort), Addr: [4]byte{127, 0, 0, 1}}); err != nil {
				t.Fatal(err)
			}
			listenFD(t, fd, 5)
			unix.Close(fd)

			var kinds = map[Kind]int{}
			var ev Event
			c.rd.SetDeadline(time.Now().Add(time.Second))
			for {
				err := c.rd.Read(&ev)
				if errors.Is(err, os.ErrDeadlineExceeded) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				if ev.Seq >= first {
					kinds[ev.Kind]++
				}
			}
			after, err := c.probe.Drops()
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%d binds: %d bind records in the ring, %d refused (%+v); listen %d, close %d",
				binds, kinds[KindBind], after.RingReserved, after.ByKind, kinds[KindListen], kinds[KindClose])
			if kinds[KindListen] != 1 || kinds[KindClose] != 1 {
				t.Errorf("listen records %d, close records %d: want 1 each", kinds[KindListen], kinds[KindClose])
			}
			// The listener's own bind may be refused too: it is a bind.
			if n := after.ByKind[1][KindBind]; n < d.RingReserved || after.ByKind[1][KindListen]+after.ByKind[1][KindClose] != 0 {
				t.Errorf("refused by kind %v: want binds only", after.ByKind[1])
			}
			if next := c.seq(); int(next-first) != binds+3 {
				t.Errorf("sequence moved %d for %d binds, a bind, a listen and a close: every refused bind takes its number", next-first, binds)
			}
		})
	}
}
