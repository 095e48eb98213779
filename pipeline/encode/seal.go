package encode

import (
	"crypto/ed25519"
	"sync/atomic"
	"time"

	"github.com/bindwatch/bindwatch/internal/seal"
	"github.com/bindwatch/bindwatch/schemas"
)

// Sealer signs each batch the encode stage makes: it appends a seal record
// whose signature covers the seq and the body digest of every record of
// the batch (the format is internal/seal's), and, in the first batch and
// then every Announce, a host_key record with the public key before the
// batch's records, so a consumer that joins late learns the key within
// one interval and the announcement is sealed like any record.
type Sealer struct {
	Key            ed25519.PrivateKey
	Host           string
	HostID, BootID string
	// Reserve numbers records (bpf.Probe.ReserveSeq): seals and host keys
	// share the host's sequence like every other record.
	Reserve func(n uint64) (uint64, error)
	// Announce is how often the host_key record is repeated; 0: only in
	// the first batch.
	Announce time.Duration
	// Now is the clock (tests); nil: time.Now.
	Now func() time.Time
	// Next, when set, is the key to rotate to: the first batch carries a
	// key_rotation record with its public key, signed by Key, and is
	// sealed, like every batch after it, by Next.
	Next ed25519.PrivateKey

	announced time.Time
	msg       []byte // the message buffer, reused
	// Seals counts seal records made; Failed, batches left unsealed
	// because no seq could be reserved.
	Seals, Failed atomic.Uint64
}

func (s *Sealer) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// hostKey is the host_key record (or, with Next set, the key_rotation
// record) to put before a batch's records, or nil when it is not due.
func (s *Sealer) hostKey() *schemas.BindEvent {
	now := s.now()
	if !s.announced.IsZero() && (s.Announce <= 0 || now.Sub(s.announced) < s.Announce) {
		return nil
	}
	seq, err := s.Reserve(1)
	if err != nil {
		return nil // tried again with the next batch
	}
	s.announced = now
	if s.Next != nil {
		next := s.Next.Public().(ed25519.PublicKey)
		ev := &schemas.BindEvent{Kind: schemas.KindKeyRotation, Host: s.Host, HostID: s.HostID, BootID: s.BootID, Seq: int64(seq),
			Time: now, PublicKey: next, Signature: ed25519.Sign(s.Key, seal.RotationMessage(s.HostID, s.BootID, int64(seq), next))}
		s.Key, s.Next = s.Next, nil
		return ev
	}
	return &schemas.BindEvent{Kind: schemas.KindHostKey, Host: s.Host, HostID: s.HostID, BootID: s.BootID, Seq: int64(seq),
		Time: now, PublicKey: s.Key.Public().(ed25519.PublicKey)}
}

// seal returns the seal record of the records with seqs and bodies.
func (s *Sealer) seal(seqs []int64, bodies [][]byte) *schemas.BindEvent {
	seq, err := s.Reserve(1)
	if err != nil {
		s.Failed.Add(1)
		return nil
	}
	m := seal.NewMessage(s.msg, s.HostID, s.BootID, int64(seq))
	for i, b := range bodies {
		m.Add(seqs[i], b)
	}
	msg := m.Bytes()
	s.msg = msg
	s.Seals.Add(1)
	return &schemas.BindEvent{Kind: schemas.KindSeal, Host: s.Host, HostID: s.HostID, BootID: s.BootID, Seq: int64(seq),
		Time: s.now(), SealedSeqs: seqs, Signature: ed25519.Sign(s.Key, msg)}
}
