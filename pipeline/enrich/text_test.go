package enrich

import (
	"net/netip"
	"strconv"
	"testing"
)

func TestInternTable(t *testing.T) {
	calls := 0
	format := func(k int) string { calls++; return strconv.Itoa(k) }
	tab := newInternTable[int](2)

	a := tab.get(1, format)
	if b := tab.get(1, format); b != a || *b != "1" || calls != 1 {
		t.Fatalf("second get: %q (same pointer %v), %d formats; want the shared text", *b, b == a, calls)
	}
	tab.get(2, format)
	if p := tab.get(3, format); *p != "3" || len(tab.m) != 1 {
		t.Errorf("past the cap: %q with %d entries; want the table emptied then refilled", *p, len(tab.m))
	}
	// A record still holding the old pointer keeps its text.
	if *a != "1" {
		t.Errorf("evicted text changed to %q", *a)
	}
	if p := tab.get(1, format); *p != "1" || calls != 4 {
		t.Errorf("after the clear: %q, %d formats", *p, calls)
	}
}

func TestAddrAndCommText(t *testing.T) {
	for _, tt := range []struct {
		a    netip.Addr
		want string
	}{
		{netip.AddrFrom4([4]byte{}), "0.0.0.0"},
		{netip.IPv6Unspecified(), "::"},
		{netip.MustParseAddr("::ffff:10.0.0.1"), "::ffff:10.0.0.1"},
		{netip.MustParseAddr("fe80::1"), "fe80::1"},
		{netip.Addr{}, ""},
	} {
		if got := addrText(tt.a); got != tt.want {
			t.Errorf("addrText(%v) = %q, want %q", tt.a, got, tt.want)
		}
	}
	for _, tt := range []struct {
		c    [16]byte
		want string
	}{
		{comm("sshd"), "sshd"},
		{comm(""), ""},
		{comm("0123456789abcdef"), "0123456789abcdef"},
		{[16]byte{'a', 0, 'b'}, "a"},
	} {
		if got := commText(tt.c); got != tt.want {
			t.Errorf("commText(%q) = %q, want %q", tt.c, got, tt.want)
		}
	}
	if portValues[0] != 0 || portValues[53] != 53 || portValues[65535] != 65535 {
		t.Error("port table not the identity")
	}
}
