package publish

import (
	"github.com/bindwatch/bindwatch/internal/spool"
	"github.com/bindwatch/bindwatch/pipeline/encode"
	"github.com/bindwatch/bindwatch/schemas"
)

// SpoolKinds names the spool.Kind of each record kind: the index is the
// spool kind, the value the record's kind field (schemas.Kind*), and, for
// spool.KindUnknown, "unknown" (a message of no known kind, or of a spool
// written before kinds). These are the kind label values of the spool's
// drops. The numbers are stored in spool files: a kind keeps its number.
var SpoolKinds = [...]string{
	spool.KindUnknown: "unknown",
	1:                 schemas.KindBind,
	2:                 schemas.KindListen,
	3:                 schemas.KindClose,
	4:                 schemas.KindSnapshot,
	5:                 schemas.KindSnapshotEnd,
	6:                 schemas.KindSuppressed,
	7:                 schemas.KindHeartbeat,
	8:                 schemas.KindStop,
	9:                 schemas.KindHostKey,
	10:                schemas.KindSeal,
	11:                schemas.KindKeyRotation,
	12:                schemas.KindSeal, // encode.SealOfBinds: a seal of binds only
}

// A kind's number must fit the spool's.
var _ [spool.NumKinds - len(SpoolKinds)]struct{}

// Expendable are the kinds a full spool gives up first: binds, and the
// seals that sign binds only. A batch holding any other record (a listen,
// a close, the inventory, a heartbeat, a host key, the seal that signs
// them...) is kept over every batch of binds. The encode stage seals each
// run of binds and each run of other records apart (encode.SealOfBinds),
// so a spool that cuts a batch where its records change class keeps every
// listen with the seal that signs it, and verifiable.
var Expendable = spool.Kinds(SpoolKind(schemas.KindBind), SpoolKind(encode.SealOfBinds))

// SpoolKind is the spool.Kind of a record of kind kind.
func SpoolKind(kind string) spool.Kind {
	switch kind {
	case schemas.KindBind:
		return 1 // the common case first
	case encode.SealOfBinds:
		return 12
	}
	for k, name := range SpoolKinds {
		if k > 0 && name == kind {
			return spool.Kind(k)
		}
	}
	return spool.KindUnknown
}

// SpoolKindName is the label of spool kind k.
func SpoolKindName(k spool.Kind) string {
	if int(k) < len(SpoolKinds) {
		return SpoolKinds[k]
	}
	return SpoolKinds[spool.KindUnknown]
}
