// Package record encodes and decodes the audit's own Kafka records
// (ListenerState, Finding) and converts them to and from the audit's
// types. Messages use Avro single-object framing: C3 01, the schema's
// CRC-64-AVRO fingerprint, the body, as the agent does without a registry.
package record

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/hamba/avro/v2"

	"github.com/bindwatch/bindwatch/pipeline/encode"
)

// codec is one record's encoder and decoder. hamba stays behind it, as it
// stays behind the agent's encode stage. It writes the newest version and
// reads every version (a compacted topic keeps what older audits wrote),
// resolving older writers' records to the newest schema.
type codec struct {
	schema avro.Schema
	header []byte
	api    avro.API
	// readers has, by writer fingerprint, the schema a body of that
	// writer is read with.
	readers map[uint64]avro.Schema
}

// newCodec prepares a codec for versions 1..latest of one record.
func newCodec(text func(int) (string, error), latest int) (*codec, error) {
	parse := func(v int) (avro.Schema, uint64, error) {
		t, err := text(v)
		if err != nil {
			return nil, 0, err
		}
		s, err := avro.ParseWithCache(t, "", &avro.SchemaCache{})
		if err != nil {
			return nil, 0, fmt.Errorf("v%d: %w", v, err)
		}
		fp, err := encode.Fingerprint([]byte(t))
		return s, fp, err
	}
	s, fp, err := parse(latest)
	if err != nil {
		return nil, err
	}
	c := &codec{schema: s, header: singleObjectHeader(fp), api: avro.Config{}.Freeze(), readers: map[uint64]avro.Schema{fp: s}}
	for v := 1; v < latest; v++ {
		w, wfp, err := parse(v)
		if err != nil {
			return nil, err
		}
		r, err := avro.NewSchemaCompatibility().Resolve(s, w)
		if err != nil {
			return nil, fmt.Errorf("v%d cannot be read as v%d: %w", v, latest, err)
		}
		c.readers[wfp] = r
	}
	return c, nil
}

func singleObjectHeader(fp uint64) []byte {
	return binary.LittleEndian.AppendUint64([]byte{0xC3, 0x01}, fp)
}

func (c *codec) marshal(v any) ([]byte, error) {
	body, err := c.api.Marshal(c.schema, v)
	if err != nil {
		return nil, err
	}
	return append(append(make([]byte, 0, len(c.header)+len(body)), c.header...), body...), nil
}

var errFraming = errors.New("not a single-object message of this schema")

func (c *codec) unmarshal(msg []byte, v any) error {
	var r avro.Schema
	if len(msg) >= 10 && msg[0] == 0xC3 && msg[1] == 0x01 {
		r = c.readers[binary.LittleEndian.Uint64(msg[2:10])]
	}
	if r == nil {
		return fmt.Errorf("%w (header % x)", errFraming, msg[:min(len(msg), 10)])
	}
	return c.api.Unmarshal(r, msg[10:], v)
}
