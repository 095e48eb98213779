package bpf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// ErrShortRecord is wrapped by Decode's error for a record too short to be an event.
var ErrShortRecord = errors.New("short bind event record")

// EventSize is the size of struct bind_event in bindwatch.h.
const EventSize = 120

// Offsets of struct bind_event's fields; TestEventLayout checks them against
// the bpf2go mirror of the C struct.
const (
	offTimestamp = 0
	offSeq       = 8
	offCgroupID  = 16
	offPID       = 24
	offTID       = 28
	offPPID      = 32
	offUID       = 36
	offGID       = 40
	offMntNS     = 44
	offNetNS     = 48
	offRet       = 52
	offBoundIf   = 56
	offProtocol  = 60
	offFamily    = 62
	offPort      = 64
	offReqPort   = 66
	offReqFamily = 68
	offOpts      = 70
	offReuse     = 71
	offAddr      = 72
	offReqAddr   = 88
	offComm      = 104
)

// Address families as the kernel numbers them.
const (
	AFUnspec = 0
	AFInet   = 2
	AFInet6  = 10
	// AFUnreadable is ReqFamily when the caller's sockaddr could not be
	// read (REQ_FAMILY_UNREADABLE in bindwatch.h).
	AFUnreadable = 0xffff
)

// Event is one bind() as the BPF program saw it.
type Event struct {
	// BootNS is nanoseconds since boot, suspend included (CLOCK_BOOTTIME).
	BootNS   uint64
	Seq      uint64
	CgroupID uint64
	PID      uint32
	TID      uint32
	PPID     uint32
	UID      uint32
	GID      uint32
	MntNS    uint32
	NetNS    uint32
	// Ret is bind's return value: 0 or a negative errno.
	Ret       int32
	BoundIf   uint32
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

// Decode fills e from one ring buffer record. It neither allocates nor uses
// reflection: it runs once per bind on the hot path.
func (e *Event) Decode(b []byte) error {
	if len(b) < EventSize {
		return fmt.Errorf("%w: %d bytes, want %d", ErrShortRecord, len(b), EventSize)
	}
	le := binary.LittleEndian
	e.BootNS = le.Uint64(b[offTimestamp:])
	e.Seq = le.Uint64(b[offSeq:])
	e.CgroupID = le.Uint64(b[offCgroupID:])
	e.PID = le.Uint32(b[offPID:])
	e.TID = le.Uint32(b[offTID:])
	e.PPID = le.Uint32(b[offPPID:])
	e.UID = le.Uint32(b[offUID:])
	e.GID = le.Uint32(b[offGID:])
	e.MntNS = le.Uint32(b[offMntNS:])
	e.NetNS = le.Uint32(b[offNetNS:])
	e.Ret = int32(le.Uint32(b[offRet:]))
	e.BoundIf = le.Uint32(b[offBoundIf:])
	e.Protocol = le.Uint16(b[offProtocol:])
	e.Family = le.Uint16(b[offFamily:])
	e.Port = le.Uint16(b[offPort:])
	e.ReqPort = le.Uint16(b[offReqPort:])
	e.ReqFamily = le.Uint16(b[offReqFamily:])
	e.Opts = Opts(b[offOpts])
	e.Reuse = b[offReuse]
	copy(e.Addr[:], b[offAddr:offAddr+16])
	copy(e.ReqAddr[:], b[offReqAddr:offReqAddr+16])
	copy(e.Comm[:], b[offComm:offComm+16])
	return nil
}

// Encode is Decode's inverse, for tests and fixtures.
func (e *Event) Encode(b []byte) {
	_ = b[EventSize-1]
	le := binary.LittleEndian
	le.PutUint64(b[offTimestamp:], e.BootNS)
	le.PutUint64(b[offSeq:], e.Seq)
	le.PutUint64(b[offCgroupID:], e.CgroupID)
	le.PutUint32(b[offPID:], e.PID)
	le.PutUint32(b[offTID:], e.TID)
	le.PutUint32(b[offPPID:], e.PPID)
	le.PutUint32(b[offUID:], e.UID)
	le.PutUint32(b[offGID:], e.GID)
	le.PutUint32(b[offMntNS:], e.MntNS)
	le.PutUint32(b[offNetNS:], e.NetNS)
	le.PutUint32(b[offRet:], uint32(e.Ret))
	le.PutUint32(b[offBoundIf:], e.BoundIf)
	le.PutUint16(b[offProtocol:], e.Protocol)
	le.PutUint16(b[offFamily:], e.Family)
	le.PutUint16(b[offPort:], e.Port)
	le.PutUint16(b[offReqPort:], e.ReqPort)
	le.PutUint16(b[offReqFamily:], e.ReqFamily)
	b[offOpts] = byte(e.Opts)
	b[offReuse] = e.Reuse
	copy(b[offAddr:], e.Addr[:])
	copy(b[offReqAddr:], e.ReqAddr[:])
	copy(b[offComm:], e.Comm[:])
}

// EffectiveAddr is the local address the socket holds after the bind.
func (e *Event) EffectiveAddr() netip.Addr { return addrOf(e.Family, &e.Addr) }

// RequestedAddr is the address in the caller's sockaddr. AF_UNSPEC, which
// inet_bind accepts for INADDR_ANY, reads as IPv4; an unreadable sockaddr or
// a foreign family gives the zero (invalid) Addr.
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

// Errno is the positive errno of a failed bind, 0 on success.
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
