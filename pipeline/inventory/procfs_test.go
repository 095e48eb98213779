package inventory

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/bindwatch/bindwatch/bpf"
	"github.com/bindwatch/bindwatch/test/testenv"
)

func TestParseSocketLine(t *testing.T) {
	for _, tt := range []struct {
		name, line       string
		protocol, family uint16
		ok               bool
		addr             string
		port             uint16
	}{
		{"tcp4 listener", "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 4242 1 0000000000000000 100 0 0 10 0",
			bpf.ProtoTCP, bpf.AFInet, true, "127.0.0.1", 8080},
		{"tcp4 established", "   1: 0100007F:1F90 0100007F:A000 01 00000000:00000000 00:00000000 00000000  1000        0 4243 1 0000000000000000 20 4 30 10 -1",
			bpf.ProtoTCP, bpf.AFInet, false, "", 0},
		{"udp6 server", "  5: 00000000000000000000000001000000:0035 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000   101        0 77 2 0000000000000000 0",
			bpf.ProtoUDP, bpf.AFInet6, true, "::1", 53},
		{"udp4 connected", "  6: 0100007F:0035 0100007F:1234 01 00000000:00000000 00:00000000 00000000   101        0 78 2 0000000000000000 0",
			bpf.ProtoUDP, bpf.AFInet, false, "", 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ino, s, ok := parseSocketLine(tt.line, tt.protocol, tt.family)
			if ok != tt.ok {
				t.Fatalf("ok = %v, want %v", ok, tt.ok)
			}
			if !ok {
				return
			}
			e := bpf.InventoryEntry{Family: tt.family, Addr: s.addr}
			if ino == 0 || e.EffectiveAddr().String() != tt.addr || s.port != tt.port {
				t.Fatalf("inode %d addr %s port %d, want %s %d", ino, e.EffectiveAddr(), s.port, tt.addr, tt.port)
			}
		})
	}
}

// TestProcSourceAgreesWithIterator: on this host, the /proc fallback finds
// the same listener and UDP server, with the same holder, as the iterator.
func TestProcSourceAgreesWithIterator(t *testing.T) {
	testenv.RequireRoot(t)
	probe, err := bpf.LoadInventory()
	if err != nil {
		testenv.Unavailable(t, "the BPF task_file iterator does not load: %v", err)
	}
	defer probe.Close()
	// Plain TCP: /proc shows an MPTCP listener as its TCP subflow.
	var lc net.ListenConfig
	lc.SetMultipathTCP(false)
	l, err := lc.Listen(t.Context(), "tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	// A UDP server binds its port: learn a free one, then bind it.
	probeUDP, err := net.ListenPacket("udp6", "[::1]:0")
	if err != nil {
		t.Fatal(err)
	}
	port := probeUDP.LocalAddr().(*net.UDPAddr).Port
	probeUDP.Close()
	u, err := net.ListenPacket("udp6", net.JoinHostPort("::1", fmt.Sprint(port)))
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	want := map[uint16]bool{uint16(l.Addr().(*net.TCPAddr).Port): true, uint16(u.LocalAddr().(*net.UDPAddr).Port): true}

	mine := func(src Source) map[uint16]string {
		t.Helper()
		snap, err := Take(src, nopSequencer{}, bpf.Filter{PID: uint32(os.Getpid())}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		got := map[uint16]string{}
		for _, r := range snap.Records {
			if want[uint16(r.Port)] {
				got[uint16(r.Port)] = r.Protocol + " " + r.Addr + " " + r.Comm
				if len(r.Holders) != 1 || r.Holders[0].PID != int32(os.Getpid()) || r.Cookie == 0 {
					t.Errorf("%s: holders %+v cookie %d", src.Name(), r.Holders, r.Cookie)
				}
				if _, err := netip.ParseAddr(r.Addr); err != nil {
					t.Errorf("%s: addr %q", src.Name(), r.Addr)
				}
			}
		}
		return got
	}
	iter, proc := mine(IterSource{Probe: probe}), mine(ProcSource{Root: "/proc"})
	if len(iter) != 2 || len(proc) != 2 {
		t.Fatalf("iterator found %v, /proc found %v; want both sockets", iter, proc)
	}
	for port, s := range iter {
		if proc[port] != s {
			t.Errorf("port %d: iterator %q, /proc %q", port, s, proc[port])
		}
	}
}

type nopSequencer struct{}

func (nopSequencer) ReserveSeq(uint64) (uint64, error) { return 0, nil }
