package config

import (
	"strings"
	"testing"

	"github.com/bindwatch/bindwatch/test/testenv"
)

// TestNoPipelineImport keeps the configuration below the pipeline: the
// components own their settings' types and defaults, and config composes
// them. An import of pipeline/... would let it grow back the other way.
func TestNoPipelineImport(t *testing.T) {
	for _, dep := range testenv.Deps(t, ".") {
		if strings.HasPrefix(dep, "github.com/bindwatch/bindwatch/pipeline") {
			t.Errorf("internal/config depends on %s", dep)
		}
	}
}

// TestLiveKeys pins which keys a reload applies (docs/operating.md's reload
// section names them) and checks ApplyLive copies those and only those.
func TestLiveKeys(t *testing.T) {
	var live []string
	for _, k := range keys {
		if k.live {
			live = append(live, k.name)
		}
	}
	want := []string{"capture.errors", "capture.pid", "capture.uid", "capture.ports",
		"pipeline.batch_size", "pipeline.batch_timeout", "log.level"}
	if strings.Join(live, " ") != strings.Join(want, " ") {
		t.Errorf("live keys %v, want %v", live, want)
	}

	running, next := Defaults(), other()
	applied, ignored := ApplyLive(&running, &next)
	for _, name := range Changed(&running, &next) {
		k, _ := lookupKey(name)
		isIgnored := false
		for _, i := range ignored {
			isIgnored = isIgnored || i == name
		}
		if isIgnored == k.live {
			t.Errorf("%s: live=%v but ignored=%v", name, k.live, isIgnored)
		}
	}
	for _, k := range keys {
		from := &running
		if k.live {
			from = &next
		}
		if got, want := textOf(k, applied), textOf(k, from); got != want {
			t.Errorf("%s: applied %q, want %q", k.name, got, want)
		}
	}
}
