package codec

import (
	"context"
	"encoding/binary"
	"github.com/bindwatch/bindwatch/schemas/codec/codectest"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/bindwatch/bindwatch/schemas"
)

// newRegistry serves an in-process Confluent-compatible registry over TCP on
// 127.0.0.1 (srfake runs an httptest.Server).
func newRegistry(t *testing.T) *srfake.Registry {
	t.Helper()
	reg := srfake.New()
	t.Cleanup(reg.Close)
	if !strings.HasPrefix(reg.URL(), "http://127.0.0.1:") {
		t.Fatalf("registry at %s, want loopback TCP", reg.URL())
	}
	return reg
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestRegister(t *testing.T) {
	ctx := testContext(t)
	reg := newRegistry(t)
	text := codectest.SchemaText(t, 1)
	subject := schemas.Subject("binds")
	if subject != "binds-value" {
		t.Fatalf("schemas.Subject(binds) = %q", subject)
	}

	// Something else already in the registry, so ids are not trivially 1.
	otherID, _, err := reg.RegisterSchema("other-value", sr.Schema{Schema: `{"type":"record","name":"O","fields":[]}`, Type: sr.TypeAvro})
	if err != nil {
		t.Fatal(err)
	}

	id, err := Register(ctx, reg.URL(), subject, text)
	if err != nil {
		t.Fatal(err)
	}
	if id == otherID {
		t.Fatalf("BindEvent got the other schema's id %d", id)
	}
	got, ok := reg.GetSchema(subject, 1)
	if !ok || got.ID != id {
		t.Fatalf("registry holds %+v under %s version 1, want id %d", got, subject, id)
	}

	// A restart finds the schema registered and gets the same id without a
	// new version.
	again, err := Register(ctx, reg.URL(), subject, text)
	if err != nil {
		t.Fatal(err)
	}
	if again != id {
		t.Errorf("second Register = %d, first %d", again, id)
	}
	if _, ok := reg.GetSchema(subject, 2); ok {
		t.Error("second Register created version 2")
	}

	// Another topic's subject shares the id: the registry dedupes schemas.
	shared, err := Register(ctx, reg.URL(), schemas.Subject("binds-eu"), text)
	if err != nil {
		t.Fatal(err)
	}
	if shared != id {
		t.Errorf("same schema under another subject got id %d, want %d", shared, id)
	}
}

func TestRegisterErrors(t *testing.T) {
	ctx := testContext(t)
	reg := newRegistry(t)

	// A port nothing listens on any more.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadURL := "http://" + l.Addr().String()
	l.Close()

	tests := []struct {
		name, url, schema, wantErr string
	}{
		{"unreachable", deadURL, codectest.SchemaText(t, 1), `look up schema under subject "binds-value"`},
		{"invalid schema", reg.URL(), `{"type":"record","name":"R"}`, `register under subject "binds-value": parse avro schema`},
		{"bad url", "http://[::1", codectest.SchemaText(t, 1), "schema registry url"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := Register(ctx, tt.url, "binds-value", tt.schema)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Register = %d, %v; want an error with %q", id, err, tt.wantErr)
			}
			if reg.SubjectExists("binds-value") {
				t.Error("a failed Register left the subject in the registry")
			}
		})
	}
}

// TestConfluentRoundTrip is the agent-with-registry path end to end:
// register, encode with the id, decode fetching the schema by id.
func TestConfluentRoundTrip(t *testing.T) {
	ctx := testContext(t)
	reg := newRegistry(t)
	text := codectest.SchemaText(t, schemas.Latest)
	id, err := Register(ctx, reg.URL(), schemas.Subject("binds"), text)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := NewConfluent([]byte(text), id)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := NewDecoder(reg.URL())
	if err != nil {
		t.Fatal(err)
	}
	var fetches atomic.Int32
	reg.Intercept(func(_ http.ResponseWriter, r *http.Request) bool {
		if strings.HasPrefix(r.URL.Path, "/schemas/ids/") {
			fetches.Add(1)
		}
		return false // counted, then served as usual
	})
	for _, ev := range []*schemas.BindEvent{codectest.FullEvent(), codectest.NullEvent(), codectest.FullEvent()} {
		msg, err := enc.Append(nil, ev)
		if err != nil {
			t.Fatal(err)
		}
		if msg[0] != 0 || int(binary.BigEndian.Uint32(msg[1:5])) != id {
			t.Fatalf("header % x, want 00 and id %d big-endian", msg[:5], id)
		}
		rec, err := dec.Decode(ctx, msg)
		if err != nil {
			t.Fatal(err)
		}
		want := Source{Framing: Confluent, SchemaID: id, Version: schemas.Latest, Name: schemas.BindEventName}
		if rec.Source != want {
			t.Errorf("source %+v, want %+v", rec.Source, want)
		}
		compareFields(t, rec.Fields, wantFields(ev))
	}
	if n := fetches.Load(); n != 1 {
		t.Errorf("decoder fetched the schema %d times for one id, want once", n)
	}

	// An id the registry never issued.
	unknown := []byte{0, 0, 0, 0x30, 0x39}
	if _, err := dec.Decode(ctx, unknown); err == nil || !strings.Contains(err.Error(), "schema id 12345") {
		t.Errorf("Decode(unknown id) error %v, want one naming id 12345", err)
	}
}
