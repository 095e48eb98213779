package encode

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

func singleObjectHeader(fingerprint uint64) []byte {
	h := []byte{0xC3, 0x01}
	return binary.LittleEndian.AppendUint64(h, fingerprint)
}

func confluentHeader(id int) ([]byte, error) {
	// The registry's ids are Java ints: positive and below 2^31.
	if id < 0 || id > math.MaxInt32 {
		return nil, fmt.Errorf("schema id %d out of range 0..%d", id, math.MaxInt32)
	}
	h := []byte{0x00}
	return binary.BigEndian.AppendUint32(h, uint32(id)), nil
}

// header is what a message's framing says about its writer schema.
type header struct {
	framing     Framing
	fingerprint uint64 // SingleObject
	schemaID    int    // Confluent
}

// parseHeader splits msg into its framing header and the Avro body.
func parseHeader(msg []byte) (header, []byte, error) {
	switch {
	case len(msg) >= 2 && msg[0] == 0xC3 && msg[1] == 0x01:
		if len(msg) < singleObjectHeaderLen {
			return header{}, nil, fmt.Errorf("single-object message of %d bytes is shorter than its %d-byte header", len(msg), singleObjectHeaderLen)
		}
		return header{framing: SingleObject, fingerprint: binary.LittleEndian.Uint64(msg[2:10])}, msg[singleObjectHeaderLen:], nil
	case len(msg) >= 1 && msg[0] == 0x00:
		if len(msg) < confluentHeaderLen {
			return header{}, nil, fmt.Errorf("confluent-framed message of %d bytes is shorter than its %d-byte header", len(msg), confluentHeaderLen)
		}
		return header{framing: Confluent, schemaID: int(binary.BigEndian.Uint32(msg[1:5]))}, msg[confluentHeaderLen:], nil
	case len(msg) == 0:
		return header{}, nil, errors.New("empty message")
	default:
		n := min(len(msg), 4)
		return header{}, nil, fmt.Errorf("not an avro message: starts with % x, want c3 01 (single-object) or 00 (confluent)", msg[:n])
	}
}

// Body is msg's Avro body, without its framing: what a seal signs.
func Body(msg []byte) ([]byte, error) {
	_, body, err := parseHeader(msg)
	return body, err
}
