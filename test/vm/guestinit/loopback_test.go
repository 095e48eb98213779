package main

import (
	"net/netip"
	"slices"
	"testing"
)

func TestMissingAddrs(t *testing.T) {
	v4, v6 := netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1")
	want := []netip.Addr{v4, v6}
	for _, tc := range []struct {
		name string
		have []netip.Addr
		miss []netip.Addr
	}{
		{"none", nil, []netip.Addr{v4, v6}},
		{"v4 only", []netip.Addr{v4}, []netip.Addr{v6}},
		{"both, other order, extra", []netip.Addr{netip.MustParseAddr("10.0.0.1"), v6, v4}, nil},
		{"v4-mapped v6 is not v4", []netip.Addr{netip.MustParseAddr("::ffff:127.0.0.1"), v6}, []netip.Addr{v4}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := missingAddrs(want, tc.have); !slices.Equal(got, tc.miss) {
				t.Errorf("missingAddrs(%v) = %v, want %v", tc.have, got, tc.miss)
			}
		})
	}
}
