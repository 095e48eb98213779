package state

import (
	"cmp"
	"slices"
)

// sortChanges puts changes of one event in a fixed order, so that two
// instances replaying the same records emit the same findings in the same
// order.
func sortChanges(ch []Change) {
	slices.SortFunc(ch, func(a, b Change) int {
		if c := cmp.Compare(a.L.Seq, b.L.Seq); c != 0 {
			return c
		}
		if c := cmp.Compare(a.L.Key.NetNS, b.L.Key.NetNS); c != 0 {
			return c
		}
		if c := cmp.Compare(a.L.Key.Cookie, b.L.Key.Cookie); c != 0 {
			return c
		}
		return cmp.Compare(a.L.Key.Anon, b.L.Key.Anon)
	})
}
