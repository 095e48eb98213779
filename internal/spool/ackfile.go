package spool

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// The acknowledged position lives in a small file of two slots written in
// turn, each in its own 512-byte sector: a write torn by a crash damages one
// slot at most, and the other still holds the position before it.
const (
	ackFileName  = "ack"
	ackSlotSize  = 32
	ackSlotPitch = 512
	ackFileSize  = 2 * ackSlotPitch
	ackVersion   = 1
)

// ackMagic opens each slot: "BWSA", bindwatch spool acknowledgement.
var ackMagic = [4]byte{'B', 'W', 'S', 'A'}

// ackSlot is one decoded slot.
type ackSlot struct {
	generation uint64 // higher is newer
	next       uint64 // first message sequence number not acknowledged
}

func encodeAckSlot(s ackSlot) [ackSlotSize]byte {
	var b [ackSlotSize]byte
	copy(b[0:4], ackMagic[:])
	b[4] = ackVersion
	binary.LittleEndian.PutUint64(b[8:16], s.generation)
	binary.LittleEndian.PutUint64(b[16:24], s.next)
	binary.LittleEndian.PutUint32(b[28:32], crc32.Checksum(b[0:28], castagnoli))
	return b
}

func decodeAckSlot(b []byte) (ackSlot, bool) {
	if len(b) < ackSlotSize || [4]byte(b[0:4]) != ackMagic || b[4] != ackVersion {
		return ackSlot{}, false
	}
	if crc32.Checksum(b[0:28], castagnoli) != binary.LittleEndian.Uint32(b[28:32]) {
		return ackSlot{}, false
	}
	return ackSlot{generation: binary.LittleEndian.Uint64(b[8:16]), next: binary.LittleEndian.Uint64(b[16:24])}, true
}

// parseAckFile returns the newest valid slot of an ack file's contents.
// ok is false when no slot is valid: a new file, or both slots damaged.
func parseAckFile(b []byte) (s ackSlot, ok bool) {
	for i := range 2 {
		lo := i * ackSlotPitch
		if lo+ackSlotSize > len(b) {
			break
		}
		if c, valid := decodeAckSlot(b[lo : lo+ackSlotSize]); valid && (!ok || c.generation > s.generation) {
			s, ok = c, true
		}
	}
	return s, ok
}

// ackFile is the open ack file. It also carries the spool's lock.
type ackFile struct {
	f    *os.File
	path string
	last ackSlot
}

// openAckFile opens or creates the ack file and takes an exclusive lock on
// it, so that two agents never share one spool directory. It returns the
// stored position, whether there was one, and whether the file was new.
func openAckFile(path string) (a *ackFile, slot ackSlot, ok, created bool, err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, ackSlot{}, false, false, fmt.Errorf("open ack file: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, ackSlot{}, false, false, fmt.Errorf("lock %s: the spool is in use by another process", path)
		}
		return nil, ackSlot{}, false, false, fmt.Errorf("lock %s: %w", path, err)
	}
	buf := make([]byte, ackFileSize)
	n, err := f.ReadAt(buf, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		f.Close()
		return nil, ackSlot{}, false, false, fmt.Errorf("read %s: %w", path, err)
	}
	slot, ok = parseAckFile(buf[:n])
	created = n == 0
	if n < ackFileSize {
		// Written out in full now, so that later slot writes overwrite
		// allocated blocks and cannot fail for want of space.
		if _, err := f.WriteAt(make([]byte, ackFileSize-n), int64(n)); err != nil {
			f.Close()
			return nil, ackSlot{}, false, false, fmt.Errorf("write %s: %w", path, err)
		}
	}
	return &ackFile{f: f, path: path, last: slot}, slot, ok, created, nil
}

// write stores next in the older slot. It does not sync.
func (a *ackFile) write(next uint64) error {
	if next == a.last.next && a.last.generation > 0 {
		return nil
	}
	s := ackSlot{generation: a.last.generation + 1, next: next}
	b := encodeAckSlot(s)
	if _, err := a.f.WriteAt(b[:], int64(s.generation%2)*ackSlotPitch); err != nil {
		return fmt.Errorf("write %s: %w", a.path, err)
	}
	a.last = s
	return nil
}

func (a *ackFile) close() error { return a.f.Close() }
