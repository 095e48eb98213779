package bpf

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
)

// TestDecodeForeign: a record of another layout version (a ring pinned by
// another bindwatch) or of a kind the ring never carries is refused, not
// misread.
func TestDecodeForeign(t *testing.T) {
	ev := sampleEvent()
	for name, mutate := range map[string]func(b []byte){
		"other layout":  func(b []byte) { b[18] = byte(LayoutVersion + 1) },
		"snapshot kind": func(b []byte) { b[16] = byte(KindSnapshot) },
		"zero kind":     func(b []byte) { b[16] = 0 },
	} {
		t.Run(name, func(t *testing.T) {
			b := make([]byte, EventSize)
			ev.Encode(b)
			mutate(b)
			var got Event
			if err := got.Decode(b); !errors.Is(err, ErrForeignRecord) {
				t.Fatalf("Decode = %v, want ErrForeignRecord", err)
			}
		})
	}
}

func sampleEvent() Event {
	ev := Event{
		Kind: KindListen, Cookie: 1 << 40, ListenNS: 1e9, Backlog: 4096,
		BootNS: 123456789012, Seq: 42, CgroupID: 9876, PID: 4242, TID: 4243, PPID: 1, UID: 1000, GID: 1001,
		MntNS: 4026531840, NetNS: 4026531992, Ret: -98, BoundIf: 2, Protocol: ProtoTCP, Family: AFInet6,
		Port: 0, ReqPort: 8080, ReqFamily: AFInet6, Opts: OptReuseAddr | OptV6Only, Reuse: 1,
	}
	copy(ev.Addr[:], netip.MustParseAddr("2001:db8::1").AsSlice())
	copy(ev.ReqAddr[:], netip.MustParseAddr("2001:db8::2").AsSlice())
	copy(ev.Comm[:], "nginx")
	return ev
}

func TestDecode(t *testing.T) {
	full := sampleEvent()
	v4 := full
	v4.Family, v4.ReqFamily, v4.Ret, v4.Port = AFInet, AFUnspec, 0, 34567
	v4.Addr, v4.ReqAddr = [16]byte{127, 0, 0, 1}, [16]byte{}
	maxComm := full
	copy(maxComm.Comm[:], "0123456789abcdef") // no NUL: all 16 bytes are name

	tests := []struct {
		name      string
		ev        Event
		comm      string
		effective string
		requested string
		errno     uint32
	}{
		{"ipv6 failed bind", full, "nginx", "2001:db8::1", "2001:db8::2", 98},
		{"ipv4 with AF_UNSPEC request", v4, "nginx", "127.0.0.1", "0.0.0.0", 0},
		{"comm without NUL", maxComm, "0123456789abcdef", "2001:db8::1", "2001:db8::2", 98},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			buf := make([]byte, EventSize)
			tt.ev.Encode(buf)
			var got Event
			if err := got.Decode(buf); err != nil {
				t.Fatal(err)
			}
			if got != tt.ev {
				t.Fatalf("round trip:\n got  %+v\n want %+v", got, tt.ev)
			}
			if s := got.CommString(); s != tt.comm {
				t.Errorf("CommString = %q, want %q", s, tt.comm)
			}
			if s := got.EffectiveAddr().String(); s != tt.effective {
				t.Errorf("EffectiveAddr = %s, want %s", s, tt.effective)
			}
			if s := got.RequestedAddr().String(); s != tt.requested {
				t.Errorf("RequestedAddr = %s, want %s", s, tt.requested)
			}
			if got.Errno() != tt.errno {
				t.Errorf("Errno = %d, want %d", got.Errno(), tt.errno)
			}
		})
	}
}

// TestDecodeBytes checks the decoder against hand-placed bytes, independent
// of Encode.
func TestDecodeBytes(t *testing.T) {
	// Offsets of struct sock_event, worked out by hand from bindwatch.h.
	const (
		offSeq, offKind, offLayout, offCookie, offPID = 8, 16, 18, 32, 48
		offRet, offBacklog, offProtocol, offFamily    = 76, 84, 88, 90
		offPort, offOpts, offAddr, offComm            = 92, 98, 100, 132
	)
	b := make([]byte, EventSize+8) // trailing bytes (ring buffer padding) are ignored
	b[offSeq] = 7
	b[offKind] = byte(KindListen)
	b[offLayout] = byte(LayoutVersion)
	b[offCookie+5] = 1                                                        // 1<<40
	b[offPID], b[offPID+1] = 0x39, 0x30                                       // 12345
	b[offRet], b[offRet+1], b[offRet+2], b[offRet+3] = 0x9e, 0xff, 0xff, 0xff // -98
	b[offBacklog], b[offBacklog+1] = 0x00, 0x10                               // 4096
	b[offProtocol], b[offProtocol+1] = 0x06, 0x01                             // 262
	b[offFamily] = AFInet
	b[offPort], b[offPort+1] = 0x50, 0x00 // 80, host order
	copy(b[offAddr:], []byte{10, 0, 0, 1})
	b[offOpts] = byte(OptFreebind | OptReusePort)
	copy(b[offComm:], "sshd\x00junk")
	var ev Event
	if err := ev.Decode(b); err != nil {
		t.Fatal(err)
	}
	if ev.Kind != KindListen || ev.Seq != 7 || ev.Cookie != 1<<40 || ev.PID != 12345 || ev.Ret != -98 ||
		ev.Backlog != 4096 || ev.Protocol != ProtoMPTCP || ev.Port != 80 ||
		ev.EffectiveAddr() != netip.MustParseAddr("10.0.0.1") || ev.Opts.String() != "F...r" || ev.CommString() != "sshd" {
		t.Fatalf("decoded %+v", ev)
	}
}

func TestDecodeShort(t *testing.T) {
	var ev Event
	err := ev.Decode(make([]byte, EventSize-1))
	if !errors.Is(err, ErrShortRecord) || !strings.Contains(err.Error(), fmt.Sprintf("%d bytes", EventSize-1)) {
		t.Fatalf("Decode of a short record = %v, want an error giving its size", err)
	}
}

func FuzzDecode(f *testing.F) {
	ev := sampleEvent()
	seed := make([]byte, EventSize)
	ev.Encode(seed)
	f.Add(seed)
	f.Add(make([]byte, EventSize))
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		var ev Event
		if err := ev.Decode(b); err != nil {
			if len(b) >= EventSize && !errors.Is(err, ErrForeignRecord) {
				t.Fatalf("Decode rejected %d bytes: %v", len(b), err)
			}
			return
		}
		// Whatever the bytes, the accessors must not panic, and re-encoding
		// must reproduce the record.
		_, _, _, _ = ev.EffectiveAddr(), ev.RequestedAddr(), ev.CommString(), ev.Errno()
		_, _ = ev.Opts.String(), ProtocolName(ev.Protocol)
		out := make([]byte, EventSize)
		ev.Encode(out)
		if string(out) != string(b[:EventSize]) {
			t.Fatalf("re-encoding changed the record:\n in  %x\n out %x", b[:EventSize], out)
		}
	})
}

func BenchmarkDecode(b *testing.B) {
	ev := sampleEvent()
	buf := make([]byte, EventSize)
	ev.Encode(buf)
	var out Event
	b.ReportAllocs()
	b.SetBytes(int64(EventSize))
	for b.Loop() {
		if err := out.Decode(buf); err != nil {
			b.Fatal(err)
		}
	}
}
