package bpf

import (
	"errors"
	"fmt"
	"net/netip"
	"unsafe"
)

// ErrShortRecord is wrapped by Decode's error for a record too short to be an event.
var ErrShortRecord = errors.New("short record")

// ErrForeignRecord is wrapped by Decode's error for a record of another
// layout version or an unknown kind: a ring left pinned by another bindwatch.
var ErrForeignRecord = errors.New("record of another bindwatch layout")

// EventSize is the size of struct sock_event in bindwatch.h, as bpf2go
// generated its mirror.
const EventSize = int(unsafe.Sizeof(bindwatchSockEvent{}))

// LayoutVersion is LAYOUT_VERSION in bindwatch.h: every ring record carries it.
const LayoutVersion = uint16(bindwatchLayoutVersionLAYOUT_VERSION)

// Address families as the kernel numbers them.
const (
	AFUnspec = 0
	AFInet   = 2
	AFInet6  = 10
	// AFUnreadable is ReqFamily when a record has no requested address:
	// the caller's sockaddr could not be read, or the call takes none
	// (REQ_FAMILY_NONE in bindwatch.h).
	AFUnreadable = uint16(bindwatchReqFamilyNoneREQ_FAMILY_NONE)
)

// Event is one bind, listen or close as a BPF program saw it.
type Event struct {
	Kind Kind
	// BootNS is nanoseconds since boot, suspend included (CLOCK_BOOTTIME).
	BootNS   uint64
	Seq      uint64
	CgroupID uint64
	// Cookie is the socket's cookie (SO_COOKIE); 0 when it could not be had.
	Cookie uint64
	// ListenNS is, for a close, how long the socket listened (a UDP server:
	// how long it was bound); 0 when unknown.
	ListenNS uint64
	PID      uint32
	TID      uint32
	PPID     uint32
	UID      uint32
	GID      uint32
	MntNS    uint32
	NetNS    uint32
	// Ret is the call's return value: 0 or a negative errno.
	Ret     int32
	BoundIf uint32
	// Backlog is, for a listen, the socket's accept backlog after the call.
	Backlog   uint32
	Protocol  uint16
	Family    uint16
	Port      uint16
	ReqPort   uint16
	ReqFamily uint16
	Opts      Opts
	// Reuse is the raw skc_reuse: 1 for SO_REUSEADDR, 2 when the kernel forces it.
	Reuse   uint8
	Addr    [16]byte
	ReqAddr [16]byte
	Comm    [16]byte
}

// Decode fills e from one ring buffer record, read through the bpf2go
// mirror of struct sock_event. It neither allocates nor uses reflection: it
// runs once per record on the hot path.
func (e *Event) Decode(b []byte) error {
	if len(b) < EventSize {
		return fmt.Errorf("%w: %d bytes, want %d", ErrShortRecord, len(b), EventSize)
	}
	r := (*bindwatchSockEvent)(unsafe.Pointer(&b[0]))
	if r.Hdr.Layout != LayoutVersion || !Kind(r.Hdr.Kind).fromRing() {
		return fmt.Errorf("%w: layout %d kind %d, this bindwatch reads layout %d", ErrForeignRecord, r.Hdr.Layout, r.Hdr.Kind, LayoutVersion)
	}
	// Field by field: a composite literal builds a temporary and copies it.
	e.Kind, e.BootNS, e.Seq = Kind(r.Hdr.Kind), r.Hdr.TsBootNs, r.Hdr.Seq
	e.CgroupID, e.Cookie, e.ListenNS = r.CgroupId, r.Cookie, r.ListenNs
	e.PID, e.TID, e.PPID, e.UID, e.GID = r.Pid, r.Tid, r.Ppid, r.Uid, r.Gid
	e.MntNS, e.NetNS, e.Ret, e.BoundIf, e.Backlog = r.Mntns, r.Netns, r.Ret, r.BoundDevIf, r.Backlog
	e.Protocol, e.Family, e.Port, e.ReqPort, e.ReqFamily = r.Protocol, r.Family, r.Port, r.ReqPort, r.ReqFamily
	e.Opts, e.Reuse, e.Addr, e.ReqAddr = Opts(r.Opts), r.Reuse, r.Addr, r.ReqAddr
	e.Comm = *(*[16]byte)(unsafe.Pointer(&r.Comm))
	return nil
}

// Encode is Decode's inverse, for tests and fixtures.
func (e *Event) Encode(b []byte) {
	_ = b[EventSize-1]
	r := (*bindwatchSockEvent)(unsafe.Pointer(&b[0]))
	*r = bindwatchSockEvent{
		Hdr:      bindwatchRecordHeader{TsBootNs: e.BootNS, Seq: e.Seq, Kind: uint16(e.Kind), Layout: LayoutVersion},
		CgroupId: e.CgroupID, Cookie: e.Cookie, ListenNs: e.ListenNS,
		Pid: e.PID, Tid: e.TID, Ppid: e.PPID, Uid: e.UID, Gid: e.GID, Mntns: e.MntNS, Netns: e.NetNS,
		Ret: e.Ret, BoundDevIf: e.BoundIf, Backlog: e.Backlog,
		Protocol: e.Protocol, Family: e.Family, Port: e.Port, ReqPort: e.ReqPort, ReqFamily: e.ReqFamily,
		Opts: uint8(e.Opts), Reuse: e.Reuse, Addr: e.Addr, ReqAddr: e.ReqAddr,
		Comm: *(*[16]int8)(unsafe.Pointer(&e.Comm)),
	}
}

// EffectiveAddr is the local address the socket holds after the call.
func (e *Event) EffectiveAddr() netip.Addr { return addrOf(e.Family, &e.Addr) }

// RequestedAddr is the address in the caller's sockaddr. AF_UNSPEC, which
// inet_bind accepts for INADDR_ANY, reads as IPv4; an unreadable sockaddr,
// a foreign family or a record of a call without one gives the zero
// (invalid) Addr.
func (e *Event) RequestedAddr() netip.Addr { return addrOf(e.ReqFamily, &e.ReqAddr) }

func addrOf(family uint16, raw *[16]byte) netip.Addr {
	switch family {
	case AFInet6:
		return netip.AddrFrom16(*raw)
	case AFInet, AFUnspec:
		return netip.AddrFrom4([4]byte(raw[:4]))
	}
	return netip.Addr{}
}

// Errno is the positive errno of a failed call, 0 on success.
func (e *Event) Errno() uint32 {
	if e.Ret >= 0 {
		return 0
	}
	return uint32(-e.Ret)
}

// CommString is the thread's comm up to its NUL.
func (e *Event) CommString() string {
	n := 0
	for n < len(e.Comm) && e.Comm[n] != 0 {
		n++
	}
	return string(e.Comm[:n])
}
