package enrich

import (
	"bytes"
	"net/netip"

	"github.com/bindwatch/bindwatch/internal/safetext"
)

// internTable remembers the text of values that recur — a host binds from a
// handful of addresses and a few hundred command names — so steady state
// neither formats nor allocates. When full it is emptied in one go: a burst
// of distinct values costs one clear, never unbounded growth, and clearing
// keeps the map's storage so refilling does not allocate buckets.
type internTable[K comparable] struct {
	m   map[K]*string
	max int
}

// newInternTable's map grows with use up to max: one made at max would be
// resident from the start (its control words are all written): with the
// exe and LRU tables, 1.1-1.4 MiB of the idle agent's 10 MiB of anonymous
// memory, for tables a quiet host never fills.
func newInternTable[K comparable](max int) *internTable[K] {
	return &internTable[K]{m: map[K]*string{}, max: max}
}

// get returns a shared pointer to the text of k, made by format on a miss.
func (t *internTable[K]) get(k K, format func(K) string) *string {
	if p, ok := t.m[k]; ok {
		return p
	}
	if len(t.m) >= t.max {
		clear(t.m)
	}
	s := format(k)
	t.m[k] = &s
	return &s
}

// addrText is the text form of an address; "" for an invalid one, which a
// family other than AF_INET/AF_INET6 decodes to.
func addrText(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

// commText is the comm up to its NUL, as bpf.Event.CommString, escaped:
// any process can name itself any bytes, and Avro strings must be UTF-8.
// It runs on an intern-table miss only, so a steady comm costs nothing.
func commText(c [16]byte) string {
	n := bytes.IndexByte(c[:], 0)
	if n < 0 {
		n = len(c)
	}
	return safetext.Bytes(c[:n])
}

// portValues backs the requested_port pointers: one shared, read-only int32
// per port, so no record allocates for it. 256 KiB without pointers, which
// the garbage collector never scans.
var portValues = func() (a [1 << 16]int32) {
	for i := range a {
		a[i] = int32(i)
	}
	return a
}()
