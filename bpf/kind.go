package bpf

import "fmt"

// Kind is what a record says happened. Ring records carry the kernel's
// record_kind (bindwatch.h); the inventory's kinds are made by the agent.
type Kind uint16

// The kinds, in the one table below.
const (
	KindBind        = Kind(bindwatchRecordKindKIND_BIND)
	KindListen      = Kind(bindwatchRecordKindKIND_LISTEN)
	KindClose       = Kind(bindwatchRecordKindKIND_CLOSE)
	KindSnapshot    = Kind(100)
	KindSnapshotEnd = Kind(101)
)

// kindInfo is what the agent knows of a kind: the name records carry (the
// schema's `kind` values) and where such records come from.
type kindInfo struct {
	name string
	// ring kinds are decoded from struct sock_event; the others are made
	// by the agent from the inventory.
	ring bool
}

var kinds = map[Kind]kindInfo{
	KindBind:        {name: "bind", ring: true},
	KindListen:      {name: "listen", ring: true},
	KindClose:       {name: "close", ring: true},
	KindSnapshot:    {name: "snapshot"},
	KindSnapshotEnd: {name: "snapshot_end"},
}

// String is the kind's name as records carry it.
func (k Kind) String() string {
	if info, ok := kinds[k]; ok {
		return info.name
	}
	return fmt.Sprintf("kind(%d)", uint16(k))
}

// ringKinds is the table's ring column as an array: Decode checks every
// record's kind, and a map lookup there cost more than the rest of Decode.
var ringKinds = func() (a [256]bool) {
	for k, info := range kinds {
		if info.ring {
			a[k] = true // ring kinds are small: the C enum's values
		}
	}
	return a
}()

func (k Kind) fromRing() bool { return int(k) < len(ringKinds) && ringKinds[k] }

// ParseKind is String's inverse.
func ParseKind(s string) (Kind, bool) {
	for k, info := range kinds {
		if info.name == s {
			return k, true
		}
	}
	return 0, false
}
