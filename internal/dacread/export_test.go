package dacread

// NoOpenat2 makes the Reader walk with openat, as under the unit's
// RestrictSUIDSGID=, which refuses openat2.
func NoOpenat2(on bool) { noOpenat2.Store(on) }
