package kafkasink

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/bindwatch/bindwatch/test/kafkatest"
)

type testPKIFiles struct{ cert, otherKey, notPEM string }

// newTestPKIFiles gives a certificate, a key of another certificate and a
// file that holds no PEM, for the config error paths.
func newTestPKIFiles(t *testing.T) testPKIFiles {
	t.Helper()
	a, b := kafkatest.NewPKI(t), kafkatest.NewPKI(t)
	notPEM := filepath.Join(t.TempDir(), "ca.txt")
	if err := os.WriteFile(notPEM, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return testPKIFiles{cert: a.ClientCertFile, otherKey: b.ClientKeyFile, notPEM: notPEM}
}
