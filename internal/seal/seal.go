// Package seal signs and verifies a host's timeline: each published batch
// of records is followed by a seal record whose Ed25519 signature covers
// the seqs and the Avro bodies of the batch's records, and a key rotation
// record carries the new public key signed by the old one.
//
// The signed bytes are defined here once; docs/schemas.md's "Seal format" and
// the docs of BindEvent v3's public_key, sealed_seqs and signature fields
// say the same in prose, so a consumer can verify without this code.
//
//	seal message     = "bindwatch seal v1" 0x00
//	                   u32be(len(host_id)) host_id
//	                   u32be(len(boot_id)) boot_id
//	                   i64be(seal seq)
//	                   u32be(n)
//	                   n × ( i64be(seq) SHA-256(body) )
//	rotation message = "bindwatch key rotation v1" 0x00
//	                   u32be(len(host_id)) host_id
//	                   u32be(len(boot_id)) boot_id
//	                   i64be(rotation record's seq)
//	                   new public key (32 bytes)
//
// A body is a record's Avro binary encoding without its framing (neither
// the single-object header nor the Confluent one): the agent may re-frame
// a spooled message when the schema registry answers late, and the
// signature stays valid.
package seal

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
)

// Domain separation prefixes: a seal signature can never be taken for a
// rotation signature, nor for anything else the key might sign.
const (
	SealDomain     = "bindwatch seal v1\x00"
	RotationDomain = "bindwatch key rotation v1\x00"
)

// MaxSealed is the most records one seal may cover: the agent's largest
// batch (pipeline.batch_size's maximum) and more, so a consumer may refuse
// a longer sealed_seqs before hashing anything.
const MaxSealed = 1 << 16

// Message builds a seal's signed bytes incrementally, one record at a time.
type Message struct {
	buf   []byte
	count int // where the record count goes
	n     uint32
}

// NewMessage starts the message of a seal of hostID's boot bootID whose
// own seq is sealSeq. dst's storage is reused.
func NewMessage(dst []byte, hostID, bootID string, sealSeq int64) *Message {
	b := append(dst[:0], SealDomain...)
	b = appendString(b, hostID)
	b = appendString(b, bootID)
	b = binary.BigEndian.AppendUint64(b, uint64(sealSeq))
	m := &Message{count: len(b)}
	m.buf = binary.BigEndian.AppendUint32(b, 0)
	return m
}

// Add appends a record: its seq and the SHA-256 of its Avro body.
func (m *Message) Add(seq int64, body []byte) {
	m.AddDigest(seq, sha256.Sum256(body))
}

// AddDigest appends a record whose body's SHA-256 is already known.
func (m *Message) AddDigest(seq int64, digest [sha256.Size]byte) {
	m.buf = binary.BigEndian.AppendUint64(m.buf, uint64(seq))
	m.buf = append(m.buf, digest[:]...)
	m.n++
}

// Bytes is the message to sign or verify.
func (m *Message) Bytes() []byte {
	binary.BigEndian.PutUint32(m.buf[m.count:], m.n)
	return m.buf
}

// RotationMessage is what the old key signs to hand over to newKey.
func RotationMessage(hostID, bootID string, seq int64, newKey ed25519.PublicKey) []byte {
	b := append([]byte(nil), RotationDomain...)
	b = appendString(b, hostID)
	b = appendString(b, bootID)
	b = binary.BigEndian.AppendUint64(b, uint64(seq))
	return append(b, newKey...)
}

func appendString(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

// ParsePublicKey checks a public key's length.
func ParsePublicKey(b []byte) (ed25519.PublicKey, error) {
	if len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("public key of %d bytes, want %d (Ed25519)", len(b), ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(b), nil
}

// Verify checks sig over msg with key; a malformed key or signature is
// simply not valid.
func Verify(key ed25519.PublicKey, msg, sig []byte) bool {
	return len(key) == ed25519.PublicKeySize && len(sig) == ed25519.SignatureSize && ed25519.Verify(key, msg, sig)
}

// ErrNoKey is returned for a record that needs a key and has none.
var ErrNoKey = errors.New("no public key")
