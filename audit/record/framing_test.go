package record

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/bindwatch/bindwatch/audit/findings"
	"github.com/bindwatch/bindwatch/audit/state"
	"github.com/bindwatch/bindwatch/schemas"
	"github.com/bindwatch/bindwatch/schemas/codec"
)

// With a registry the codec writes the Confluent wire format with the id
// of the newest schema under the subject it was given, and a codec reads
// both framings, including a Confluent record an older audit wrote with an
// older version's id.
func TestConfluentFraming(t *testing.T) {
	reg := srfake.New()
	t.Cleanup(reg.Close)
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	f := &findings.Finding{ID: "abc", State: "open", Kind: findings.KindListener, HostID: "id", Port: 4444, FirstSeen: at, Time: at}

	single, _ := NewCodec()
	so, err := single.EncodeFinding(f)
	if err != nil {
		t.Fatal(err)
	}
	confluent, _ := NewCodec()
	if err := confluent.WriteConfluent(t.Context(), reg.URL(), ValueSubject("st"), ValueSubject("fi")); err != nil {
		t.Fatal(err)
	}
	cm, err := confluent.EncodeFinding(f)
	if err != nil {
		t.Fatal(err)
	}
	text, _ := schemas.FindingSchema(schemas.FindingLatest)
	id, err := codec.Register(t.Context(), reg.URL(), "fi-value", text)
	if err != nil {
		t.Fatal(err)
	}
	if h, _, err := codec.ParseHeader(cm); err != nil || h.Framing != codec.Confluent || h.SchemaID != id {
		t.Fatalf("header %+v %v, want confluent id %d", h, err, id)
	}

	// An older audit with a registry wrote v1 under the same subject.
	v1, _ := schemas.FindingSchema(1)
	v1id, err := codec.Register(t.Context(), reg.URL(), "fi-value", v1)
	if err != nil {
		t.Fatal(err)
	}
	old, _ := codec.NewVersioned("old", func(int) (string, error) { return v1, nil }, 1)
	body, _ := old.Marshal(&schemas.Finding{FindingID: "r", State: "open", Rule: "sshd", HostID: "id", FirstSeen: at, Time: at})
	h, _ := codec.ConfluentHeader(v1id)
	oldMsg := append(h, body[10:]...)

	reader, _ := NewCodec()
	if _, err := reader.DecodeFinding(cm); !errors.Is(err, codec.ErrFraming) {
		t.Errorf("confluent message without a registry: %v, want an error saying so", err)
	}
	if err := reader.ReadRegistry(reg.URL()); err != nil {
		t.Fatal(err)
	}
	for name, msg := range map[string][]byte{"single-object": so, "confluent": cm} {
		got, err := reader.DecodeFinding(msg)
		if err != nil || got.ID != "abc" || got.Port != 4444 || got.Kind != findings.KindListener || !got.Time.Equal(at) {
			t.Errorf("%s: %+v %v", name, got, err)
		}
	}
	got, err := reader.DecodeFinding(oldMsg)
	if err != nil || got.Kind != findings.KindRequire || got.Rule != "sshd" {
		t.Errorf("confluent v1 finding: %+v %v", got, err)
	}
}

// The audit's event decoder refuses its own records: a finding produced
// to the events topic has a host_id and a seq, and is no event.
func TestEventDecoderRefusesAuditRecords(t *testing.T) {
	slow, err := codec.NewDecoder("")
	if err != nil {
		t.Fatal(err)
	}
	d, err := NewEventDecoder(slow)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := NewCodec()
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	msg, _ := c.EncodeFinding(&findings.Finding{ID: "abc", State: "open", HostID: "id", Seq: 9, FirstSeen: at, Time: at})
	var ev state.Event
	if err := d.Decode(t.Context(), msg, &ev); err == nil || !strings.Contains(err.Error(), schemas.FindingName) {
		t.Errorf("a finding on the events topic: %v, event %+v", err, ev)
	}
}
