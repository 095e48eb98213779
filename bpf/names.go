package bpf

import (
	"strconv"

	"golang.org/x/sys/unix"
)

// Opts are the socket options that shape a bind, as set before the call.
type Opts uint8

// Bits of Opts; the first five are bindsnoop's OPTS column in order.
const (
	OptFreebind          = Opts(bindwatchOptionBitsOPT_FREEBIND)
	OptTransparent       = Opts(bindwatchOptionBitsOPT_TRANSPARENT)
	OptBindAddressNoPort = Opts(bindwatchOptionBitsOPT_BIND_ADDRESS_NO_PORT)
	OptReuseAddr         = Opts(bindwatchOptionBitsOPT_REUSEADDR)
	OptReusePort         = Opts(bindwatchOptionBitsOPT_REUSEPORT)
	OptV6Only            = Opts(bindwatchOptionBitsOPT_V6ONLY)
)

// String is bindsnoop's five-character OPTS column: one of "FTNRr" per
// option that is set, "." for each that is not. V6Only has no column there.
func (o Opts) String() string {
	const letters = "FTNRr"
	var b [5]byte
	for i := range b {
		if o&(1<<i) != 0 {
			b[i] = letters[i]
		} else {
			b[i] = '.'
		}
	}
	return string(b[:])
}

// Has reports whether every bit of want is set.
func (o Opts) Has(want Opts) bool { return o&want == want }

// Protocol numbers bindwatch names.
const (
	ProtoTCP   = 6
	ProtoUDP   = 17
	ProtoSCTP  = 132
	ProtoMPTCP = 262
)

// ProtocolName is TCP, UDP, MPTCP or SCTP, else the protocol number.
func ProtocolName(p uint16) string {
	switch p {
	case ProtoTCP:
		return "TCP"
	case ProtoUDP:
		return "UDP"
	case ProtoMPTCP:
		return "MPTCP"
	case ProtoSCTP:
		return "SCTP"
	}
	return strconv.Itoa(int(p))
}

// ErrnoName is the symbolic name of a positive errno, such as EADDRINUSE;
// an errno without a name prints as its number.
func ErrnoName(errno uint32) string {
	if errno == 0 {
		return "0"
	}
	if name := unix.ErrnoName(unix.Errno(errno)); name != "" {
		return name
	}
	return strconv.FormatUint(uint64(errno), 10)
}

// FamilyName is AF_INET or AF_INET6, else the family number.
func FamilyName(f uint16) string {
	switch f {
	case AFInet:
		return "AF_INET"
	case AFInet6:
		return "AF_INET6"
	case AFUnspec:
		return "AF_UNSPEC"
	case AFUnreadable:
		return "unreadable"
	}
	return strconv.Itoa(int(f))
}
