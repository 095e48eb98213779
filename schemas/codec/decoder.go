package codec

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/bindwatch/bindwatch/schemas"
)

// Record is one decoded message: the writer schema's fields in schema order.
type Record struct {
	Fields []Field
	Source Source
}

// Field is one record field. Value is nil for a null union branch, else a
// Go native (string, int, int64, bool, float32, float64, []byte), a
// time.Time for timestamp logical types, or []Field for a nested record.
type Field struct {
	Name  string
	Value any
}

// Source says how a message named its writer schema.
type Source struct {
	Framing     Framing
	Fingerprint uint64 // SingleObject: the fingerprint in the header
	SchemaID    int    // Confluent: the registry id in the header
	// Version is the embedded BindEvent schema version whose canonical form
	// equals the writer schema's, 0 when none does (a foreign schema read
	// through the registry, or another record).
	Version int
	// Name is the writer schema's full record name: schemas.BindEventName,
	// schemas.FindingName (consume reads the findings topic too), ...
	Name string
}

// writerSchema is a schema messages may be written with, ready to read.
type writerSchema struct {
	version int
	codec   *bodyCodec
}

// Decoder reads messages in either framing. Single-object messages are
// matched against every embedded schema version (BindEvent's and the
// audit's records') by fingerprint;
// Confluent ones are resolved through the registry, once per id. It is safe
// for concurrent use.
type Decoder struct {
	byFingerprint map[uint64]writerSchema
	known         string     // "v1 0x…, v2 0x…" for errors
	fetch         SchemaByID // nil without a registry

	mu   sync.Mutex
	byID map[int]writerSchema
	// unknownUntil keeps, for a while, the ids the registry said it does
	// not have: a message naming one is bad data, and asking again for
	// each costs a round trip.
	unknownUntil map[int]time.Time
}

// ErrRegistryUnavailable wraps a failure to ask the registry (unreachable,
// 5xx, a timeout): the message may be good, so a consumer must retry
// rather than skip it.
var ErrRegistryUnavailable = errors.New("schema registry unavailable")

// unknownFor is how long an id the registry does not have stays unknown.
const unknownFor = time.Minute

// NewDecoder prepares a Decoder. registryURL may be empty: Confluent-framed
// messages then fail with an error saying so.
func NewDecoder(registryURL string) (*Decoder, error) {
	d := &Decoder{byFingerprint: map[uint64]writerSchema{}, byID: map[int]writerSchema{}, unknownUntil: map[int]time.Time{}}
	for _, rec := range []struct {
		name   string
		text   func(int) (string, error)
		latest int
	}{
		{"BindEvent", schemas.BindEventSchema, schemas.Latest},
		{"ListenerState", schemas.ListenerStateSchema, schemas.ListenerStateLatest},
		{"Finding", schemas.FindingSchema, schemas.FindingLatest},
	} {
		for v := 1; v <= rec.latest; v++ {
			text, err := rec.text(v)
			if err != nil {
				return nil, err
			}
			fp, err := Fingerprint([]byte(text))
			if err != nil {
				return nil, fmt.Errorf("%s schema v%d: %w", rec.name, v, err)
			}
			if _, dup := d.byFingerprint[fp]; dup {
				return nil, fmt.Errorf("%s schema v%d has the fingerprint of another version (%#016x): same canonical form", rec.name, v, fp)
			}
			codec, err := newBodyCodec([]byte(text))
			if err != nil {
				return nil, fmt.Errorf("%s schema v%d: %w", rec.name, v, err)
			}
			ws := writerSchema{codec: codec}
			if rec.name == "BindEvent" {
				ws.version = v
			}
			d.byFingerprint[fp] = ws
			if d.known != "" {
				d.known += ", "
			}
			d.known += fmt.Sprintf("%s v%d %#016x", rec.name, v, fp)
		}
	}
	if registryURL != "" {
		fetch, err := RegistrySchemas(registryURL)
		if err != nil {
			return nil, err
		}
		d.fetch = fetch
	}
	return d, nil
}

// Decode reads one framed message.
func (d *Decoder) Decode(ctx context.Context, msg []byte) (Record, error) {
	h, body, err := ParseHeader(msg)
	if err != nil {
		return Record{}, err
	}
	src := Source{Framing: h.Framing, Fingerprint: h.Fingerprint, SchemaID: h.SchemaID}
	var ws writerSchema
	switch h.Framing {
	case SingleObject:
		var ok bool
		ws, ok = d.byFingerprint[h.Fingerprint]
		if !ok {
			return Record{}, fmt.Errorf("single-object message with schema fingerprint %#016x: no bindwatch schema version has it (%s)", h.Fingerprint, d.known)
		}
	case Confluent:
		ws, err = d.schemaForID(ctx, h.SchemaID)
		if err != nil {
			return Record{}, err
		}
	}
	fields, err := ws.codec.decodeBody(body)
	if err != nil {
		return Record{}, fmt.Errorf("%s message (%s): %w", h.Framing, describe(src), err)
	}
	src.Version, src.Name = ws.version, ws.codec.name()
	return Record{Fields: fields, Source: src}, nil
}

func (d *Decoder) schemaForID(ctx context.Context, id int) (writerSchema, error) {
	if d.fetch == nil {
		return writerSchema{}, fmt.Errorf("confluent-framed message with schema id %d, but no schema registry url was given", id)
	}
	d.mu.Lock()
	ws, ok := d.byID[id]
	until := d.unknownUntil[id]
	d.mu.Unlock()
	if ok {
		return ws, nil
	}
	if time.Now().Before(until) {
		return writerSchema{}, fmt.Errorf("confluent-framed message with schema id %d, which the registry does not have", id)
	}
	text, err := d.fetch(ctx, id)
	if err != nil {
		if errors.Is(err, errUnknownID) {
			d.mu.Lock()
			if len(d.unknownUntil) > 10000 {
				clear(d.unknownUntil)
			}
			d.unknownUntil[id] = time.Now().Add(unknownFor)
			d.mu.Unlock()
			return writerSchema{}, fmt.Errorf("confluent-framed message with schema id %d: %w", id, err)
		}
		return writerSchema{}, fmt.Errorf("confluent-framed message with schema id %d: %w", id, err)
	}
	codec, err := newBodyCodec([]byte(text))
	if err != nil {
		return writerSchema{}, fmt.Errorf("schema id %d: %w", id, err)
	}
	ws = writerSchema{codec: codec}
	// Tell which of our BindEvent versions the registry's copy is, when it
	// is one.
	if fp, err := Fingerprint([]byte(text)); err == nil {
		ws.version = d.byFingerprint[fp].version
	}
	d.mu.Lock()
	d.byID[id] = ws
	d.mu.Unlock()
	return ws, nil
}

func describe(s Source) string {
	if s.Framing == Confluent {
		return fmt.Sprintf("schema id %d", s.SchemaID)
	}
	return fmt.Sprintf("fingerprint %#016x", s.Fingerprint)
}

// Map is the record's fields by name, nested records (in arrays and maps
// too) as maps of theirs: what a mapping to another schema reads.
func (r Record) Map() map[string]any { return fieldMap(r.Fields) }

func fieldMap(fields []Field) map[string]any {
	m := make(map[string]any, len(fields))
	for _, f := range fields {
		m[f.Name] = mapValue(f.Value)
	}
	return m
}

func mapValue(v any) any {
	switch v := v.(type) {
	case []Field:
		return fieldMap(v)
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = mapValue(x)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, x := range v {
			out[k] = mapValue(x)
		}
		return out
	}
	return v
}
