package record

import (
	"context"
	"encoding/binary"
	"fmt"

	"github.com/bindwatch/bindwatch/audit/state"
	"github.com/bindwatch/bindwatch/schemas"
	"github.com/bindwatch/bindwatch/schemas/codec"
)

// EventDecoder reads BindEvent messages straight into a state.Event. The
// audit reads every event of the fleet, and the generic decoder (a []Field
// per record, a map per union) costs more than the rest of its work; this
// one walks the writer schema's fields in order, keeps the ones the table
// needs, skips the others without allocating and interns the strings that
// repeat. Messages whose writer schema it cannot compile (a foreign schema
// from the registry) go through codec.Decoder and EventFrom, the same
// fields by name. One EventDecoder per goroutine.
type EventDecoder struct {
	slow   *codec.Decoder
	byFP   map[uint64]*eventReader
	byID   map[int]*eventReader // nil value: the registry's schema is not one of ours
	intern codec.Interner
}

// NewEventDecoder wraps slow, which resolves Confluent schema ids.
func NewEventDecoder(slow *codec.Decoder) (*EventDecoder, error) {
	d := &EventDecoder{slow: slow, byFP: map[uint64]*eventReader{}, byID: map[int]*eventReader{}}
	for v := 1; v <= schemas.Latest; v++ {
		text, err := schemas.BindEventSchema(v)
		if err != nil {
			return nil, err
		}
		r, err := compileEvent(text)
		if err != nil {
			return nil, fmt.Errorf("BindEvent v%d: %w", v, err)
		}
		fp, err := codec.Fingerprint([]byte(text))
		if err != nil {
			return nil, err
		}
		r.version = v
		d.byFP[fp] = r
	}
	return d, nil
}

// Decode reads one framed message into ev.
func (d *EventDecoder) Decode(ctx context.Context, msg []byte, ev *state.Event) error {
	var r *eventReader
	var body []byte
	switch {
	case len(msg) >= 10 && msg[0] == 0xC3 && msg[1] == 0x01:
		r, body = d.byFP[binary.LittleEndian.Uint64(msg[2:10])], msg[10:]
	case len(msg) >= 5 && msg[0] == 0x00:
		id := int(binary.BigEndian.Uint32(msg[1:5]))
		var known bool
		if r, known = d.byID[id]; !known {
			rec, err := d.slow.Decode(ctx, msg)
			if err != nil {
				return err
			}
			if err := notAudit(rec); err != nil {
				return err
			}
			if rec.Source.Version > 0 {
				for _, c := range d.byFP {
					if c.version == rec.Source.Version {
						d.byID[id] = c
					}
				}
			} else {
				d.byID[id] = nil
			}
			EventFrom(rec, ev)
			return nil
		}
		body = msg[5:]
	}
	if r == nil {
		rec, err := d.slow.Decode(ctx, msg)
		if err != nil {
			return err
		}
		if err := notAudit(rec); err != nil {
			return err
		}
		EventFrom(rec, ev)
		return nil
	}
	return r.read(body, ev, &d.intern)
}

// notAudit refuses the audit's own records (a finding or listener state
// produced to the events topic by mistake): they have a host_id and a seq
// but are no event. A foreign schema is read by field name, as before.
func notAudit(rec codec.Record) error {
	if n := rec.Source.Name; n == schemas.FindingName || n == schemas.ListenerStateName {
		return fmt.Errorf("a %s record, not an event", n)
	}
	return nil
}

// eventReader reads one writer schema's bodies: its plan, and per field
// the Event field it fills.
type eventReader struct {
	version int
	fields  []*codec.Type
	targets []target
}

func compileEvent(text string) (*eventReader, error) {
	plan, err := codec.Compile([]byte(text))
	if err != nil {
		return nil, err
	}
	if plan.Kind != codec.KindRecord {
		return nil, fmt.Errorf("schema is %s, not a record", plan)
	}
	r := &eventReader{}
	for _, f := range plan.Fields {
		r.fields = append(r.fields, f.Type)
		r.targets = append(r.targets, eventFields[f.Name])
	}
	return r, nil
}

// read fills ev from one body. Each field's Value is a fresh variable on
// the stack: zeroing one kept in the heap took write barriers, a third of
// the time (BenchmarkFastDecode's profile).
func (r *eventReader) read(b []byte, ev *state.Event, in *codec.Interner) error {
	*ev = state.Event{Kind: state.KindBind}
	var err error
	for i, t := range r.fields {
		target := r.targets[i]
		var v codec.Value
		if b, err = codec.Walk(b, t, &v, target != fNone, in); err != nil {
			return fmt.Errorf("BindEvent v%d field %d: %w", r.version, i, err)
		}
		if target != fNone {
			target.set(ev, &v, in)
		}
	}
	if len(b) > 0 {
		// As the generic decoder: bytes after the record are not ours to
		// ignore (a different writer schema, or something appended).
		return fmt.Errorf("BindEvent v%d: %d bytes after the record", r.version, len(b))
	}
	return nil
}
