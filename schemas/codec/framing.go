package codec

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// Framing is how a message says which schema wrote its body.
type Framing int

const (
	// SingleObject is Avro's single-object encoding: C3 01, the 8-byte
	// little-endian CRC-64-AVRO fingerprint of the writer schema, the body.
	// Used when no schema registry is configured.
	SingleObject Framing = iota + 1
	// Confluent is the schema registry wire format: 00, the 4-byte
	// big-endian schema id, the body.
	Confluent
)

func (f Framing) String() string {
	switch f {
	case SingleObject:
		return "single-object"
	case Confluent:
		return "confluent"
	default:
		return fmt.Sprintf("Framing(%d)", int(f))
	}
}

const (
	singleObjectHeaderLen = 10
	confluentHeaderLen    = 5
)

// SingleObjectHeader is the single-object header naming the writer schema
// by its fingerprint.
func SingleObjectHeader(fingerprint uint64) []byte {
	h := []byte{0xC3, 0x01}
	return binary.LittleEndian.AppendUint64(h, fingerprint)
}

// ConfluentHeader is the Confluent wire format's header naming the writer
// schema by its registry id.
func ConfluentHeader(id int) ([]byte, error) {
	// The registry's ids are Java ints: positive and below 2^31.
	if id < 0 || id > math.MaxInt32 {
		return nil, fmt.Errorf("schema id %d out of range 0..%d", id, math.MaxInt32)
	}
	h := []byte{0x00}
	return binary.BigEndian.AppendUint32(h, uint32(id)), nil
}

// Header is what a message's framing says about its writer schema.
type Header struct {
	Framing     Framing
	Fingerprint uint64 // SingleObject
	SchemaID    int    // Confluent
}

// ParseHeader splits msg into its framing header and the Avro body.
func ParseHeader(msg []byte) (Header, []byte, error) {
	switch {
	case len(msg) >= 2 && msg[0] == 0xC3 && msg[1] == 0x01:
		if len(msg) < singleObjectHeaderLen {
			return Header{}, nil, fmt.Errorf("single-object message of %d bytes is shorter than its %d-byte header", len(msg), singleObjectHeaderLen)
		}
		return Header{Framing: SingleObject, Fingerprint: binary.LittleEndian.Uint64(msg[2:10])}, msg[singleObjectHeaderLen:], nil
	case len(msg) >= 1 && msg[0] == 0x00:
		if len(msg) < confluentHeaderLen {
			return Header{}, nil, fmt.Errorf("confluent-framed message of %d bytes is shorter than its %d-byte header", len(msg), confluentHeaderLen)
		}
		return Header{Framing: Confluent, SchemaID: int(binary.BigEndian.Uint32(msg[1:5]))}, msg[confluentHeaderLen:], nil
	case len(msg) == 0:
		return Header{}, nil, errors.New("empty message")
	default:
		n := min(len(msg), 4)
		return Header{}, nil, fmt.Errorf("not an avro message: starts with % x, want c3 01 (single-object) or 00 (confluent)", msg[:n])
	}
}

// Body is msg's Avro body, without its framing: what a seal signs.
func Body(msg []byte) ([]byte, error) {
	_, body, err := ParseHeader(msg)
	return body, err
}
