package spool

import (
	"fmt"
	"os"
)

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
