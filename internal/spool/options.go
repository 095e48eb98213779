package spool

import (
	"fmt"
	"log/slog"
	"slices"
)

// FullPolicy says what a full spool gives up. The values are those of the
// spool.full_policy configuration key.
type FullPolicy string

const (
	// DropOldest deletes the oldest unacknowledged batches, one record at a
	// time and no more than needed, to make room for the new one: the
	// oldest expendable ones (Options.Expendable) first, wherever they
	// are, then the oldest of the others.
	DropOldest FullPolicy = "drop_oldest"
	// DropNewest refuses the new batch and keeps what is spooled; a batch
	// that is not expendable (Options.Expendable) takes the place of the
	// newest expendable ones spooled (among the last 512 to 1024
	// appended), if they make room, before it is refused.
	DropNewest FullPolicy = "drop_newest"
)

// FsyncPolicy says when the spool forces its writes to stable storage. The
// values are those of the spool.fsync configuration key. planSyncs (sync.go)
// compiles a policy into the points where the spool syncs.
type FsyncPolicy string

const (
	// FsyncAlways syncs the segment before Append returns, the ack file
	// before Ack returns, and the directory when a segment is created or
	// removed.
	FsyncAlways FsyncPolicy = "always"
	// FsyncBatch syncs a segment when it stops taking appends (rotation,
	// Close), before Peek reads from the segment still taking appends, and
	// at Open for the segments found there; the ack file before a segment
	// is removed and at Close; the directory when a segment is created and
	// at Close.
	FsyncBatch FsyncPolicy = "batch"
	// FsyncNever leaves all writeback to the kernel.
	FsyncNever FsyncPolicy = "never"
)

// The allowed values, in the order error messages list them.
var (
	FullPolicies  = []FullPolicy{DropOldest, DropNewest}
	FsyncPolicies = []FsyncPolicy{FsyncAlways, FsyncBatch, FsyncNever}
)

// DefaultOptions are the spool the agent runs when its configuration sets
// nothing (internal/config composes its defaults from them); Open puts
// their FullPolicy and Fsync in empty fields.
func DefaultOptions() Options {
	return Options{MaxBytes: 1 << 30, FullPolicy: DropOldest, Fsync: FsyncBatch}
}

// DefaultSegmentBytes caps the size at which segments rotate when
// Options.SegmentBytes is zero.
const DefaultSegmentBytes = 16 << 20

// Options configure a spool. MaxBytes is required.
type Options struct {
	// MaxBytes bounds the unacknowledged bytes (records as framed on disk,
	// and any damaged bytes not yet skipped). On disk the spool can exceed
	// it by the acknowledged head of its oldest segment, which is removed
	// only when all of it is acknowledged: less than SegmentBytes plus one
	// record.
	MaxBytes int64
	// FullPolicy is DropOldest when empty.
	FullPolicy FullPolicy
	// Fsync is FsyncBatch when empty.
	Fsync FsyncPolicy
	// SegmentBytes is the size past which a new segment file is started;
	// a record larger than that gets a segment of its own. When zero,
	// MaxBytes/16 capped at DefaultSegmentBytes, which keeps the bytes that
	// wait for their segment's last acknowledgement small next to MaxBytes.
	SegmentBytes int64
	// Logger receives the spool's diagnostics; slog.Default() when nil.
	Logger *slog.Logger
	// Expendable are the kinds of message a full spool gives up first: a
	// record all of whose messages are of these kinds is dropped before
	// any record holding another kind (KindUnknown included, unless in
	// the set). Within each class FullPolicy holds. Empty: every record
	// is alike, as before kinds.
	Expendable KindSet
	// SplitMixed cuts a batch that mixes expendable messages and others
	// into records of each (runs, in order) once the spool is past half
	// full with it: a full spool then drops the binds of a batch that
	// holds a listen and keeps the listen. The cost is more, smaller
	// records to replay, so it is done only where drops come near.
	SplitMixed bool
	// KindNames name kinds in the spool's messages (KindNames[k] for Kind
	// k); a kind without a name is said as its number.
	KindNames []string
	// OnDrop, when set, is called once for every loss the spool counts,
	// after the spool's lock is released, in the goroutine whose call
	// found the loss; it may call the spool. The caller logs the drops
	// then (and may aggregate them). When nil, the spool logs each drop as
	// a warning.
	OnDrop func(Drop)
}

func (o Options) withDefaults() (Options, error) {
	if o.MaxBytes <= 0 {
		return o, fmt.Errorf("max bytes %d: must be positive", o.MaxBytes)
	}
	d := DefaultOptions()
	if o.FullPolicy == "" {
		o.FullPolicy = d.FullPolicy
	}
	if !slices.Contains(FullPolicies, o.FullPolicy) {
		return o, fmt.Errorf("full policy %q: want %s or %s", o.FullPolicy, DropOldest, DropNewest)
	}
	if o.Fsync == "" {
		o.Fsync = d.Fsync
	}
	if !slices.Contains(FsyncPolicies, o.Fsync) {
		return o, fmt.Errorf("fsync policy %q: want %s, %s or %s", o.Fsync, FsyncAlways, FsyncBatch, FsyncNever)
	}
	if o.SegmentBytes < 0 {
		return o, fmt.Errorf("segment bytes %d: must not be negative", o.SegmentBytes)
	}
	if o.SegmentBytes == 0 {
		o.SegmentBytes = min(DefaultSegmentBytes, max(o.MaxBytes/16, 1))
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o, nil
}
