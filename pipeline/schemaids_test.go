package pipeline

import (
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/bindwatch/bindwatch/schemas"
)

// TestRegistryOutageAtStart: once the registry gave the schema an id, an
// agent starting while the registry is down uses that id instead of failing
// to start; without one it fails, saying why.
func TestRegistryOutageAtStart(t *testing.T) {
	dir := t.TempDir()
	text, err := schemas.BindEventSchema(schemas.Latest)
	if err != nil {
		t.Fatal(err)
	}
	reg := srfake.New()
	url := reg.URL()
	ctx := context.Background()
	id, err := registerSchema(ctx, dir, url, "binds-value", text, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	reg.Close()

	got, err := registerSchema(ctx, dir, url, "binds-value", text, discardLogger())
	if err != nil || got != id {
		t.Fatalf("with the registry down: id %d, %v; want the remembered %d", got, err, id)
	}
	if _, err := registerSchema(ctx, dir, url, "other-value", text, discardLogger()); err == nil {
		t.Fatal("a subject never registered got an id with the registry down")
	}
	if _, err := registerSchema(ctx, t.TempDir(), url, "binds-value", text, discardLogger()); err == nil {
		t.Fatal("a fresh state directory got an id with the registry down")
	}
}
