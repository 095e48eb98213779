package codec

import (
	"errors"
	"fmt"

	"github.com/bindwatch/bindwatch/schemas"
)

// Encoder appends one framed Avro message per event. Implementations are
// safe for concurrent use.
type Encoder interface {
	// Append appends the framed encoding of ev to dst and returns the
	// extended slice; on error dst is returned unchanged.
	Append(dst []byte, ev *schemas.BindEvent) ([]byte, error)
}

// NewSingleObject returns an Encoder writing Avro single-object encoding:
// C3 01, the spec fingerprint of schemaJSON (little-endian), the body.
func NewSingleObject(schemaJSON []byte) (Encoder, error) {
	fp, err := Fingerprint(schemaJSON)
	if err != nil {
		return nil, err
	}
	return newFramed(schemaJSON, SingleObjectHeader(fp))
}

// NewConfluent returns an Encoder writing the Confluent wire format: 00, the
// registry's schema id (big-endian), the body. id is what Register returned
// for schemaJSON.
func NewConfluent(schemaJSON []byte, id int) (Encoder, error) {
	h, err := ConfluentHeader(id)
	if err != nil {
		return nil, err
	}
	return newFramed(schemaJSON, h)
}

// framed is a fixed header followed by the body.
type framed struct {
	header []byte
	body   *eventWriter
}

func newFramed(schemaJSON []byte, header []byte) (*framed, error) {
	// The canonical form walk validates the whole schema (names, references),
	// which the field-by-field plan alone would not.
	if _, err := CanonicalForm(schemaJSON); err != nil {
		return nil, err
	}
	body, err := newEventWriter(schemaJSON)
	if err != nil {
		return nil, fmt.Errorf("schema does not fit schemas.BindEvent: %w", err)
	}
	return &framed{header: header, body: body}, nil
}

func (e *framed) Append(dst []byte, ev *schemas.BindEvent) ([]byte, error) {
	if ev == nil {
		return dst, errors.New("encode: nil event")
	}
	return e.body.appendBody(append(dst, e.header...), ev), nil
}
