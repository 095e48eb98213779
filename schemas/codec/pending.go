package codec

import (
	"encoding/binary"
	"fmt"
	"math"
)

// pendingFlag marks a Confluent schema id the registry has not given yet.
// Registry ids are Java ints (below 2^31), so an id with this bit set is
// never a real one; the low bits hold the schema version it stands for.
const pendingFlag = 1 << 31

// NewConfluentPending returns an Encoder writing the Confluent wire format
// with a placeholder for the id of schema version version, for an agent
// that could not reach the registry yet: the messages are spooled as they
// are and get their real id (SetSchemaID) before they are sent.
func NewConfluentPending(schemaJSON []byte, version int) (Encoder, error) {
	if version < 0 || version >= pendingFlag {
		return nil, fmt.Errorf("schema version %d out of range", version)
	}
	return newFramed(schemaJSON, binary.BigEndian.AppendUint32([]byte{0x00}, pendingFlag|uint32(version)))
}

// PendingVersion reports whether msg is Confluent-framed with a placeholder
// id, and the schema version the placeholder stands for.
func PendingVersion(msg []byte) (int, bool) {
	if len(msg) < confluentHeaderLen || msg[0] != 0x00 {
		return 0, false
	}
	id := binary.BigEndian.Uint32(msg[1:5])
	if id&pendingFlag == 0 {
		return 0, false
	}
	return int(id &^ pendingFlag), true
}

// SetSchemaID writes id into msg's Confluent header, in place.
func SetSchemaID(msg []byte, id int) error {
	if len(msg) < confluentHeaderLen || msg[0] != 0x00 {
		return fmt.Errorf("not a confluent-framed message")
	}
	if id < 0 || id > math.MaxInt32 {
		return fmt.Errorf("schema id %d out of range 0..%d", id, math.MaxInt32)
	}
	binary.BigEndian.PutUint32(msg[1:5], uint32(id))
	return nil
}
