package enrich

import "net/netip"

// Exposure values: who can reach a socket's local address.
const (
	ExposureLoopback  = "loopback"
	ExposureLinkLocal = "link_local"
	ExposureSpecific  = "specific"
	ExposureWildcard  = "wildcard"
)

var exposureText = map[string]*string{}

func init() {
	for _, s := range []string{ExposureLoopback, ExposureLinkLocal, ExposureSpecific, ExposureWildcard} {
		exposureText[s] = &s
	}
}

// ExposureOf classifies a local address. An IPv4-mapped IPv6 address is
// its IPv4 address: ::ffff:127.0.0.1 is loopback only.
func ExposureOf(a netip.Addr) string {
	a = a.Unmap()
	switch {
	case a.IsUnspecified():
		return ExposureWildcard
	case a.IsLoopback():
		return ExposureLoopback
	case a.IsLinkLocalUnicast():
		return ExposureLinkLocal
	}
	return ExposureSpecific
}

// exposurePtr is a shared, read-only pointer to ExposureOf's text.
func exposurePtr(a netip.Addr) *string { return exposureText[ExposureOf(a)] }
