package codec

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/hamba/avro/v2"
)

// Versioned is the encoder and decoder of one of the audit's records
// (ListenerState, Finding), whose messages are framed as the agent frames
// its events: single-object (C3 01, fingerprint, body) without a registry,
// Confluent (00, id, body) once WriteConfluent has registered the schema.
// Both framings are always read, so a topic written before a switch keeps
// its older messages readable. hamba stays behind it. It writes the newest
// version and reads every version (a compacted topic keeps what older
// audits wrote), resolving older writers' records to the newest schema.
type Versioned struct {
	name   string // for errors: "Finding"
	text   string // the newest version's schema
	schema avro.Schema
	header []byte
	api    avro.API
	// readers has, by writer fingerprint, the schema a body of that
	// writer is read with.
	readers map[uint64]avro.Schema

	// fetch looks Confluent ids up; nil until the codec is given a
	// registry.
	fetch SchemaByID
	mu    sync.Mutex
	byID  map[int]avro.Schema
}

// NewVersioned prepares a codec for versions 1..latest of one record.
func NewVersioned(name string, text func(int) (string, error), latest int) (*Versioned, error) {
	parse := func(v int) (string, avro.Schema, uint64, error) {
		t, err := text(v)
		if err != nil {
			return "", nil, 0, err
		}
		s, err := avro.ParseWithCache(t, "", &avro.SchemaCache{})
		if err != nil {
			return "", nil, 0, fmt.Errorf("v%d: %w", v, err)
		}
		fp, err := Fingerprint([]byte(t))
		return t, s, fp, err
	}
	t, s, fp, err := parse(latest)
	if err != nil {
		return nil, err
	}
	c := &Versioned{name: name, text: t, schema: s, header: SingleObjectHeader(fp), api: avro.Config{}.Freeze(),
		readers: map[uint64]avro.Schema{fp: s}, byID: map[int]avro.Schema{}}
	for v := 1; v < latest; v++ {
		_, w, wfp, err := parse(v)
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

// WriteConfluent registers the newest schema under subject and frames
// what the codec writes from now on with the id the registry gave it.
func (c *Versioned) WriteConfluent(ctx context.Context, registryURL, subject string) error {
	id, err := Register(ctx, registryURL, subject, c.text)
	if err != nil {
		return err
	}
	h, err := ConfluentHeader(id)
	if err != nil {
		return err
	}
	c.header = h
	return nil
}

func (c *Versioned) Marshal(v any) ([]byte, error) {
	body, err := c.api.Marshal(c.schema, v)
	if err != nil {
		return nil, err
	}
	return append(append(make([]byte, 0, len(c.header)+len(body)), c.header...), body...), nil
}

// ErrFraming is returned for a message that is not of this codec's record.
var ErrFraming = errors.New("not a message of this schema")

func (c *Versioned) Unmarshal(ctx context.Context, msg []byte, v any) error {
	h, body, err := ParseHeader(msg)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrFraming, err)
	}
	var r avro.Schema
	switch h.Framing {
	case SingleObject:
		if r = c.readers[h.Fingerprint]; r == nil {
			return fmt.Errorf("%w: single-object message with fingerprint %#016x, no %s schema version has it", ErrFraming, h.Fingerprint, c.name)
		}
	case Confluent:
		if r, err = c.readerOfID(ctx, h.SchemaID); err != nil {
			return err
		}
	}
	return c.api.Unmarshal(r, body, v)
}

// readerOfID is the schema a body written with registry id id is read
// with: one of ours when the registry's schema has its fingerprint, else
// the registry's schema resolved to the newest version.
func (c *Versioned) readerOfID(ctx context.Context, id int) (avro.Schema, error) {
	c.mu.Lock()
	r, ok := c.byID[id]
	c.mu.Unlock()
	if ok {
		return r, nil
	}
	if c.fetch == nil {
		return nil, fmt.Errorf("%w: confluent-framed message with schema id %d, but no schema registry url was given", ErrFraming, id)
	}
	text, err := c.fetch(ctx, id)
	if err != nil {
		return nil, err
	}
	fp, err := Fingerprint([]byte(text))
	if err != nil {
		return nil, fmt.Errorf("schema id %d: %w", id, err)
	}
	if r = c.readers[fp]; r == nil {
		w, err := avro.ParseWithCache(text, "", &avro.SchemaCache{})
		if err != nil {
			return nil, fmt.Errorf("schema id %d: %w", id, err)
		}
		if r, err = avro.NewSchemaCompatibility().Resolve(c.schema, w); err != nil {
			return nil, fmt.Errorf("schema id %d cannot be read as the newest %s: %w", id, c.name, err)
		}
	}
	c.mu.Lock()
	c.byID[id] = r
	c.mu.Unlock()
	return r, nil
}

// ReadRegistry makes c read Confluent-framed messages too, asking fetch for
// the schemas of ids it has not seen. Call it before c is shared.
func (c *Versioned) ReadRegistry(fetch SchemaByID) { c.fetch = fetch }
