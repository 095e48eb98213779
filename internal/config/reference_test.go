package config

import (
	"flag"
	"os"
	"strings"
	"testing"
)

var updateReadme = flag.Bool("update-readme", false, "rewrite the configuration reference in docs/operating.md")

const (
	readme         = "../../docs/operating.md"
	referenceBegin = "<!-- config-reference:begin (generated: go test ./internal/config -update-readme) -->\n"
	referenceEnd   = "<!-- config-reference:end -->"
)

// TestReadmeReference keeps the configuration reference in docs/operating.md
// (it was the README's) equal to the key table (and so to
// configs/bindwatch.yaml, which TestSampleFile ties to the same table).
func TestReadmeReference(t *testing.T) {
	b, err := os.ReadFile(readme)
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	start := strings.Index(text, referenceBegin)
	end := strings.Index(text, referenceEnd)
	if start < 0 || end < start {
		t.Fatalf("docs/operating.md has no configuration reference between %q and %q", referenceBegin, referenceEnd)
	}
	got := text[start+len(referenceBegin) : end]
	want := Reference()
	if got == want {
		return
	}
	if *updateReadme {
		if err := os.WriteFile(readme, []byte(text[:start+len(referenceBegin)]+want+text[end:]), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("docs/operating.md's configuration reference is stale: run go test ./internal/config -update-readme\n--- docs/operating.md\n%s--- keys\n%s", got, want)
}
