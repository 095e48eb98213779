package bpf

import "testing"

func TestOptsString(t *testing.T) {
	tests := []struct {
		o    Opts
		want string
	}{
		{0, "....."},
		{OptFreebind, "F...."},
		{OptTransparent, ".T..."},
		{OptBindAddressNoPort, "..N.."},
		{OptReuseAddr, "...R."},
		{OptReusePort, "....r"},
		{OptV6Only, "....."},
		{OptFreebind | OptBindAddressNoPort | OptReuseAddr, "F.NR."},
		{0x3f, "FTNRr"},
	}
	for _, tt := range tests {
		if got := tt.o.String(); got != tt.want {
			t.Errorf("Opts(%06b).String() = %q, want %q", uint8(tt.o), got, tt.want)
		}
	}
}

func TestProtocolName(t *testing.T) {
	for p, want := range map[uint16]string{6: "TCP", 17: "UDP", 262: "MPTCP", 132: "SCTP", 1: "1", 255: "255", 0: "0"} {
		if got := ProtocolName(p); got != want {
			t.Errorf("ProtocolName(%d) = %q, want %q", p, got, want)
		}
	}
}

func TestErrnoName(t *testing.T) {
	for errno, want := range map[uint32]string{0: "0", 98: "EADDRINUSE", 99: "EADDRNOTAVAIL", 13: "EACCES", 22: "EINVAL", 4000: "4000"} {
		if got := ErrnoName(errno); got != want {
			t.Errorf("ErrnoName(%d) = %q, want %q", errno, got, want)
		}
	}
}
