package snoop

import "net/netip"

// addrString prints an address as inet_ntop does; an unknown family prints "?".
func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return "?"
	}
	return a.String()
}
