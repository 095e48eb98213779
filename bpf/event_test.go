package bpf

import (
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"unsafe"
)

// TestEventLayout pins the decoder's offsets to the bpf2go mirror of struct
// bind_event, so a change to the C struct cannot silently shift fields.
func TestEventLayout(t *testing.T) {
	var gen bindwatchBindEvent
	if got := unsafe.Sizeof(gen); got != EventSize {
		t.Fatalf("sizeof(struct bind_event) = %d, EventSize = %d", got, EventSize)
	}
	want := map[string]uintptr{
		"TsBootNs": offTimestamp, "Seq": offSeq, "CgroupId": offCgroupID, "Pid": offPID, "Tid": offTID,
		"Ppid": offPPID, "Uid": offUID, "Gid": offGID, "Mntns": offMntNS, "Netns": offNetNS, "Ret": offRet,
		"BoundDevIf": offBoundIf, "Protocol": offProtocol, "Family": offFamily, "Port": offPort,
		"ReqPort": offReqPort, "ReqFamily": offReqFamily, "Opts": offOpts, "Reuse": offReuse,
		"Addr": offAddr, "ReqAddr": offReqAddr, "Comm": offComm,
	}
	typ := reflect.TypeOf(gen)
	for i := 0; i < typ.NumField(); i++ {
		f := typ.Field(i)
		if f.Name == "_" {
			continue
		}
		off, ok := want[f.Name]
		if !ok {
			t.Errorf("struct bind_event has field %s the decoder does not know", f.Name)
			continue
		}
		if f.Offset != off {
			t.Errorf("field %s at offset %d, decoder reads %d", f.Name, f.Offset, off)
		}
		delete(want, f.Name)
	}
	for name := range want {
		t.Errorf("decoder reads field %s that struct bind_event no longer has", name)
	}
}

func sampleEvent() Event {
	ev := Event{
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
	b := make([]byte, EventSize+8) // trailing bytes (ring buffer padding) are ignored
	b[offSeq] = 7
	b[offPID], b[offPID+1] = 0x39, 0x30                                       // 12345
	b[offRet], b[offRet+1], b[offRet+2], b[offRet+3] = 0x9e, 0xff, 0xff, 0xff // -98
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
	if ev.Seq != 7 || ev.PID != 12345 || ev.Ret != -98 || ev.Protocol != ProtoMPTCP || ev.Port != 80 ||
		ev.EffectiveAddr() != netip.MustParseAddr("10.0.0.1") || ev.Opts.String() != "F...r" || ev.CommString() != "sshd" {
		t.Fatalf("decoded %+v", ev)
	}
}

func TestDecodeShort(t *testing.T) {
	var ev Event
	err := ev.Decode(make([]byte, EventSize-1))
	if !errors.Is(err, ErrShortRecord) || !strings.Contains(err.Error(), "119 bytes") {
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
			if len(b) >= EventSize {
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
	b.SetBytes(EventSize)
	for b.Loop() {
		if err := out.Decode(buf); err != nil {
			b.Fatal(err)
		}
	}
}
