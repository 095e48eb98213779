// Package spool keeps the batches Kafka did not take in an append-only
// queue on disk, hands them back oldest first for replay, and deletes them
// only once the brokers have acknowledged them. Losses it cannot avoid (a
// full spool, a full disk, damaged files) are counted by reason, logged and
// reported, never silent.
//
// # Use
//
// The publish stage appends a batch when Kafka fails it, and keeps
// appending while Len reports batches, so that order is kept. One replayer
// loops: Peek; on ErrEmpty wait on Appended; publish the batch; on success
// Ack it, on failure back off and publish the same batch again.
//
// # Delivery
//
// A restart, clean or not, resumes after the last acknowledged batch. What
// may be replayed twice: the batch Peek returned whose Ack had not returned
// when the process died (at least once: it may have reached Kafka), and
// after a power loss under FsyncBatch or FsyncNever the batches whose Ack
// was not yet synced (under FsyncBatch, those acknowledged since the last
// segment was removed). Nothing else acknowledged is replayed. Consumers
// drop duplicates by (host_id, boot_id, seq).
//
// What survives: after a process crash (SIGKILL), every batch whose Append
// returned, under every policy. After a power loss: under FsyncAlways every
// such batch; under FsyncBatch all but those appended to the segment still
// taking appends since it was last synced; under FsyncNever what the kernel
// had written back (about 30 s). Lost bytes that leave later records behind
// are counted as Corrupt from the gap in sequence numbers; a lost tail with
// nothing after it cannot be counted.
//
// # Bounds
//
// The unacknowledged bytes (records as framed, and damaged bytes not yet
// skipped) stay within Options.MaxBytes. When an append would exceed it,
// DropOldest drops whole records, oldest first and no more than needed
// (FullOldest), and DropNewest refuses the append (FullNewest). With
// Options.Expendable, records all of whose messages are of those kinds
// (a bind storm's batches) go first: DropOldest drops the oldest of them
// wherever they are, before any other record; under DropNewest a batch
// that is not expendable takes the place of the newest expendable ones
// (FullNewest), and an expendable batch is refused.
// Only when no expendable record is left (or what drops keep on disk is
// at its bound, below) is a record holding another kind dropped, oldest
// first. Every drop is counted by reason and by the kinds of the messages
// lost (Stats.DroppedByKind).
//
// An expendable record that is not at the head is dropped in place: its
// header is rewritten with the dropped flag, then the whole blocks of its
// payload are punched out of the file (fallocate PUNCH_HOLE), which frees
// them at once. What stays on disk (its header's block and its last,
// partial block: at most 8 KiB a record) is bounded by MaxBytes/8 on top
// of MaxBytes, and freed when the replay passes it; consecutive records
// dropped in place join one run under one header. When that bound is
// reached (a long outage), the oldest records are dropped whatever they
// hold. On a file system that cannot punch holes, records are dropped from
// the head only. With Options.SplitMixed, a batch mixing expendable
// messages and others is written, once the spool is past half full, as
// several records (the runs of each class, in order), so that a bind
// storm's batches give up their binds and keep their listens.
// A batch larger than MaxBytes alone is refused (TooLarge). A failed write
// is cut off the segment and refused (WriteError); the spool stays usable,
// and appends succeed again once there is space. A dropped batch that was
// in flight at the replayer may still reach Kafka; it is counted as dropped
// all the same.
//
// # Directory
//
// The directory holds segment files named by a 20-digit decimal index and
// ".seg" (00000000000000000001.seg, 00000000000000000002.seg, ...), read in
// index order, and the file "ack". Other files are ignored. The ack file is
// locked with flock(LOCK_EX) while a spool is open. A segment takes appends
// until the next record would take it past Options.SegmentBytes (a record
// larger than that gets a segment of its own); appends after an Open go to
// a new segment, never after what an earlier process left. A segment is deleted once every record in it is acknowledged
// or dropped. A segment that cannot be opened (removed while the spool is
// open, no read permission) is skipped, at Open or when the replay reaches
// it: its records count as Corrupt, their messages from the gap in sequence
// numbers the next record shows.
//
// # Segment file format (versions 1 and 2)
//
// A segment is a sequence of records and nothing else. All integers are
// little-endian. A record is a 32-byte header followed by its payload:
//
//	offset size field
//	0      4    magic: the bytes 'B' 'W' 'S' 'R' (0x42 0x57 0x53 0x52)
//	4      1    version: 2 (1 in spools of agents before kinds)
//	5      1    flags: version 1: 0; version 2: bit 0 dropped, others 0
//	6      2    kinds: version 1: 0; version 2: bit k set if a message of
//	            kind k is in the record, and no other bit (u16)
//	8      8    first: sequence number of the record's first message (u64)
//	16     4    count: number of messages, at least 1 (u32)
//	20     4    length: payload bytes following the header (u32)
//	24     4    header CRC: CRC-32C of bytes 0..23 (u32)
//	28     4    record CRC: CRC-32C of bytes 0..27, then of the payload (u32)
//
// CRC-32C is the Castagnoli CRC (polynomial 0x1EDC6F41, reflected, initial
// value and final XOR 0xFFFFFFFF; "123456789" gives 0xE3069283), as in
// iSCSI, ext4 and Go's crc32.Castagnoli. The record CRC is computed
// continuing over bytes 0..27 and the payload as one stream.
//
// In version 2 the payload opens with count bytes, the kind of each
// message in order (each below 16), so length is at least count; then, as
// the whole payload of version 1, count messages, each:
//
//	offset size      field
//	0      4         key length K (u32)
//	4      4         value length V (u32)
//	8      8         time: Unix time in nanoseconds, 0 for none (i64)
//	16     K         key
//	16+K   V         value
//
// and the messages fill the payload exactly. Sequence numbers count
// messages over the life of the spool directory: a record's first is the
// previous record's first plus its count. A writer never reuses a number,
// so gaps mean lost messages.
//
// A record with the dropped flag was given up to make room in a full
// spool, its messages counted then: a reader skips it, and counts its
// messages neither as replayed nor as lost. Its payload is not checked
// (its whole blocks read as zeros); its record CRC is that of the record
// before it was dropped.
//
// Reading: at an offset, take 32 bytes; if the magic matches and the
// header CRC of bytes 0..23 equals bytes 24..27, the header is authentic.
// Its record spans 32+length bytes. If version, flags or kinds are not
// those above, skip the record by its length (its messages are lost to
// this reader). An older reader, which knows version 1 only, loses every
// version 2 record this way: a spool is read by the agent that wrote it or
// a newer one. If the record passes the end of the file (a torn write) or
// its record CRC does not match, its messages are lost; its bytes end at
// the first offset after its start that holds an authentic header, or at
// its length (the end of the file), whichever comes first. If the magic or
// header CRC do not match, nothing at the offset can be trusted: the
// unreadable bytes end at the next offset holding an authentic header, or
// at the end of the file. Then, in sequence numbers: a record whose
// messages all lie below the acknowledged position (see the ack file) is
// acknowledged; a record starting above the next expected number shows the
// messages in between lost. A length is never trusted before its header
// CRC, and never read past the end of the file, so damage cannot make a
// reader allocate more than the file holds. testdata/read_spool.py is such
// a reader, written from this description and tested against this package.
//
// # Ack file format (version 1)
//
// "ack" is 1024 bytes: two 32-byte slots at offsets 0 and 512, written in
// turn so that a torn write damages one at most. Each slot, little-endian:
//
//	offset size field
//	0      4    magic: 'B' 'W' 'S' 'A'
//	4      1    version: 1
//	5      3    reserved: 0
//	8      8    generation: incremented by every write (u64)
//	16     8    next: first sequence number not acknowledged (u64)
//	24     4    reserved: 0
//	28     4    CRC-32C of bytes 0..27 (u32)
//
// The valid slot (magic, version, CRC) with the higher generation holds the
// acknowledged position: records whose messages all lie below next are
// acknowledged. Generation g is written to the slot at (g mod 2)*512. With
// no valid slot, every record on disk is unacknowledged.
package spool
