// Package record is what flows between the agent's stages: events from the
// ring buffer, and records of every kind on their way to Kafka, each with
// the token that acknowledges its delivery to its source.
package record

import (
	"github.com/bindwatch/bindwatch/bpf"
	"github.com/bindwatch/bindwatch/schemas"
)

// Ack is a delivery token: the ring position that, once this record and
// all before it are safe (in Kafka or the spool), frees their ring space.
// Zero for records that hold no ring space (the inventory's): delivering
// them frees nothing, so they can never free space of ring records still
// in flight.
type Ack uint64

// Later is the later of two tokens: ring positions only grow along the
// stream, and a batch is acknowledged by the last ring position in it.
func (a Ack) Later(b Ack) Ack { return max(a, b) }

// Raw is an event read from the ring buffer.
type Raw struct {
	Event bpf.Event
	Ack   Ack
}

// Record is one record of the schema, ready to encode.
type Record struct {
	Event schemas.BindEvent
	Ack   Ack
	// Rest, on the agent's own records, counts the records of the same
	// reservation of seqs (bpf.Probe.ReserveSeq) that follow this one:
	// the enricher lets no ring record between them.
	Rest int
}
