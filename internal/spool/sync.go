package spool

import (
	"fmt"
	"os"
)

// syncPlan says which of the spool's writes a FsyncPolicy forces to stable
// storage. It is compiled once, at Open, so that each place that may sync
// reads one field instead of restating the policy.
type syncPlan struct {
	segmentOnAppend   bool // the segment, before Append returns
	segmentOnSeal     bool // a segment that stops taking appends: rotation, Close
	segmentBeforePeek bool // the segment taking appends, before Peek returns a record of it
	segmentsAtOpen    bool // the segments a previous process left
	ackOnAck          bool // the ack file, whenever the acknowledged position is stored
	ackBeforeRemove   bool // the ack file, before a spent segment is removed
	ackAtOpen         bool // the ack file, once Open has stored the position
	ackAtClose        bool // the ack file, at Close
	dirOnCreate       bool // the directory, when a segment is created
	dirOnRemove       bool // the directory, when a segment is removed
	dirAtOpen         bool // the directory, at Open, if the ack file is new or segments went
	dirAtClose        bool // the directory, at Close, if a change is not synced yet
}

// planSyncs compiles p, as the FsyncPolicy constants describe it: always
// syncs every write when it is made, and everything batch syncs besides;
// batch syncs what must survive a power loss at the points the policy
// names; never syncs nothing.
func planSyncs(p FsyncPolicy) syncPlan {
	switch p {
	case FsyncAlways:
		return syncPlan{
			segmentOnAppend: true,
			segmentOnSeal:   true,
			// segmentBeforePeek: each append has synced its record.
			segmentsAtOpen:  true,
			ackOnAck:        true,
			ackBeforeRemove: true,
			ackAtOpen:       true,
			ackAtClose:      true,
			dirOnCreate:     true,
			dirOnRemove:     true,
			dirAtOpen:       true,
			dirAtClose:      true,
		}
	case FsyncBatch:
		return syncPlan{
			segmentOnSeal:     true,
			segmentBeforePeek: true,
			segmentsAtOpen:    true,
			ackBeforeRemove:   true,
			ackAtOpen:         true,
			ackAtClose:        true,
			dirOnCreate:       true,
			dirAtOpen:         true,
			dirAtClose:        true,
		}
	default: // FsyncNever
		return syncPlan{}
	}
}

func (s *Spool) syncDir() {
	if !s.dirDirty {
		return
	}
	if err := s.syncDirFile(); err != nil {
		s.syncFailed(fmt.Errorf("sync directory %s: %w", s.dir, err))
		return
	}
	s.dirDirty = false
}

// fsync flushes f's data and the metadata needed to read it back (its
// size), which is all a segment or the ack file needs, and counts it.
func (s *Spool) fsync(f *os.File, path string) error {
	s.stats.Syncs++
	return fdatasync(f, path)
}

func (s *Spool) syncDirFile() error {
	s.stats.Syncs++
	return s.dirf.Sync()
}

func (s *Spool) syncFailed(err error) {
	s.stats.SyncErrors++
	s.log.Error("fsync failed; spooled data may not survive a power loss", "error", err)
}
