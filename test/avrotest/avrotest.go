// Package avrotest runs Apache Avro's own Python implementation (Debian's
// python3-avro) for tests: an Avro reader independent of ours and hamba's.
package avrotest

import (
	"bytes"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/bindwatch/bindwatch/test/testenv"
)

// Python is the interpreter Debian's python3-avro is installed for; the
// python3 first on PATH (pyenv) does not see it.
const Python = "/usr/bin/python3"

//go:embed pyavro.py
var pyavro []byte

var version = sync.OnceValues(func() ([]byte, error) {
	return exec.Command(Python, "-c", "import avro, sys; sys.stdout.write(avro.__version__)").CombinedOutput()
})

// Require stops t unless python3-avro can run.
func Require(t testing.TB) {
	t.Helper()
	if out, err := version(); err != nil {
		testenv.Unavailable(t, "needs %s with the avro module (Debian package python3-avro): %v: %s", Python, err, out)
	}
}

// PyAvro runs pyavro.py (see its doc string for the requests it takes) and
// decodes its JSON answer into ans, numbers kept exact. It fails t if the
// script fails.
func PyAvro(t testing.TB, req, ans any) {
	t.Helper()
	if err := TryPyAvro(t, req, ans); err != nil {
		t.Fatal(err)
	}
}

// TryPyAvro is PyAvro for a request that may be refused: the error carries
// what the script wrote to stderr (a traceback naming the cause).
func TryPyAvro(t testing.TB, req, ans any) error {
	t.Helper()
	Require(t)
	path := filepath.Join(t.TempDir(), "pyavro.py")
	if err := os.WriteFile(path, pyavro, 0o644); err != nil {
		t.Fatal(err)
	}
	in, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(Python, path)
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("pyavro.py: %w\n%s", err, stderr.String())
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	dec.UseNumber() // 64-bit values must compare exactly
	if err := dec.Decode(ans); err != nil {
		return fmt.Errorf("pyavro.py answer %q: %w", out, err)
	}
	return nil
}

// Decoded is what pyavro.py reports for one message.
type Decoded struct {
	Framing     string         `json:"framing"`
	Fingerprint string         `json:"fingerprint"`
	SchemaID    json.Number    `json:"schema_id"`
	Record      map[string]any `json:"record"`
}

// Decode reads each framed message with schema, checking the framing header
// itself. Timestamps come back as integer microseconds since the epoch.
func Decode(t testing.TB, schema string, msgs [][]byte) []Decoded {
	t.Helper()
	hexes := make([]string, len(msgs))
	for i, m := range msgs {
		hexes[i] = hex.EncodeToString(m)
	}
	var out []Decoded
	PyAvro(t, map[string]any{"op": "decode", "schema": schema, "messages": hexes}, &out)
	return out
}
