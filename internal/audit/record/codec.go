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

// codec is one schema's encoder and decoder. hamba stays behind it, as it
// stays behind the agent's encode stage.
type codec struct {
	schema avro.Schema
	header []byte
	api    avro.API
}

func newCodec(text string) (*codec, error) {
	s, err := avro.ParseWithCache(text, "", &avro.SchemaCache{})
	if err != nil {
		return nil, err
	}
	fp, err := encode.Fingerprint([]byte(text))
	if err != nil {
		return nil, err
	}
	h := binary.LittleEndian.AppendUint64([]byte{0xC3, 0x01}, fp)
	return &codec{schema: s, header: h, api: avro.Config{}.Freeze()}, nil
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
	if len(msg) < len(c.header) || string(msg[:len(c.header)]) != string(c.header) {
		return fmt.Errorf("%w (header % x)", errFraming, msg[:min(len(msg), 10)])
	}
	return c.api.Unmarshal(c.schema, msg[len(c.header):], v)
}
