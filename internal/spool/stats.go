package spool

// Reason says why messages were dropped.
type Reason int

// The reasons, in the order of Stats' arrays.
const (
	// FullOldest: spooled messages deleted to make room (DropOldest).
	FullOldest Reason = iota
	// FullNewest: a batch refused because the spool was full (DropNewest).
	FullNewest
	// TooLarge: a batch refused because alone it exceeds MaxBytes.
	TooLarge
	// WriteError: a batch that could not be written (ENOSPC, EIO, ...).
	WriteError
	// Corrupt: spooled messages found damaged or missing on disk.
	Corrupt
	// NumReasons sizes arrays indexed by Reason.
	NumReasons
)

var reasonNames = [NumReasons]string{"full_oldest", "full_newest", "too_large", "write_error", "corrupt"}

// String is the reason's metric label.
func (r Reason) String() string {
	if r < 0 || r >= NumReasons {
		return "unknown"
	}
	return reasonNames[r]
}

// Drop is one loss the spool counted.
type Drop struct {
	Reason Reason
	// Batches counts whole records lost; 0 for unreadable bytes, whose
	// records cannot be told apart.
	Batches uint64
	// Messages counts the messages lost. For unreadable bytes it is 0: the
	// messages they held are reported in a later Corrupt drop, when the
	// next readable record shows the gap in sequence numbers.
	Messages uint64
	// Kinds splits Messages by the messages' Kind; messages whose kind is
	// not known (unreadable bytes, version 1 records) are KindUnknown.
	Kinds [NumKinds]uint64
	// Err says what happened, and where on disk for Corrupt.
	Err error
}

// Stats describe the spool. Counters start at zero with each Open.
type Stats struct {
	// Batches, Bytes and Segments are the current contents: Len, and the
	// segment files in the directory.
	Batches  int
	Bytes    int64
	Segments int
	// DeadBytes is what records dropped in place still take on disk, on
	// top of Bytes: at most MaxBytes/8.
	DeadBytes int64
	// Acked is the sequence number of the first message not acknowledged
	// (nor dropped); Next is the number the next appended message gets.
	Acked, Next uint64

	AppendedBatches, AppendedMessages uint64
	AckedBatches, AckedMessages       uint64
	// DroppedMessages and DroppedBatches are indexed by Reason.
	DroppedMessages [NumReasons]uint64
	DroppedBatches  [NumReasons]uint64
	// DroppedByKind splits DroppedMessages by the messages' Kind.
	DroppedByKind [NumReasons][NumKinds]uint64
	// CorruptRegions counts damaged records and runs of unreadable bytes
	// skipped.
	CorruptRegions uint64
	// Syncs counts fsync and fdatasync calls, of segments, the ack file and
	// the directory.
	Syncs uint64
	// SyncErrors counts failed fsyncs whose data had already been reported
	// as spooled: the data is in the page cache but may not survive a
	// power loss.
	SyncErrors uint64
}

// Dropped is the total of DroppedMessages.
func (s Stats) Dropped() uint64 {
	var n uint64
	for _, v := range s.DroppedMessages {
		n += v
	}
	return n
}
