package config

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"reflect"
	"testing"

	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/confmap"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/v2"
)

// TestLogValueMirrorsTheFile logs Defaults as JSON and compares it with the
// sample file: same nesting, same keys, same spelling of every value.
func TestLogValueMirrorsTheFile(t *testing.T) {
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("starting", "config", Defaults())
	var line struct {
		Config map[string]any `json:"config"`
	}
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("%v in %s", err, buf.Bytes())
	}
	logged := koanf.New(".")
	if err := logged.Load(confmap.Provider(line.Config, ""), nil); err != nil {
		t.Fatal(err)
	}
	sample := koanf.New(".")
	if err := sample.Load(file.Provider(sampleFile), yaml.Parser()); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(logged.Keys(), sample.Keys()) {
		t.Fatalf("logged keys\n%v\nfile keys\n%v", logged.Keys(), sample.Keys())
	}
	for _, k := range sample.Keys() {
		// JSON numbers are float64 and YAML's int: compare as text.
		if got, want := logged.String(k), sample.String(k); got != want {
			t.Errorf("%s: logged %q, file %q", k, got, want)
		}
	}
}

func TestSlogLevel(t *testing.T) {
	for level, want := range map[string]slog.Level{
		LogDebug: slog.LevelDebug, LogInfo: slog.LevelInfo, LogWarn: slog.LevelWarn, LogError: slog.LevelError,
	} {
		if got := (Log{Level: level}).SlogLevel(); got != want {
			t.Errorf("%s: got %v, want %v", level, got, want)
		}
	}
}
