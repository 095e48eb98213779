package seal

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The key is created 0600 at first start and the same one is loaded after;
// a key others may read is refused; openssl reads the file.
func TestLoadOrCreate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "host.key")
	k1, created, err := LoadOrCreate(path)
	if err != nil || !created {
		t.Fatalf("first start: created %v, %v", created, err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v; want 0600", st.Mode(), err)
	}
	k2, created, err := LoadOrCreate(path)
	if err != nil || created || !k1.Equal(k2) {
		t.Fatalf("second start: created %v, same key %v, %v", created, k1.Equal(k2), err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadOrCreate(path); err == nil || !strings.Contains(err.Error(), "0600") {
		t.Fatalf("a world-readable key: %v", err)
	}
	os.Chmod(path, 0o600)
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("SKIP: no openssl to read the key with")
	}
	out, err := exec.Command(openssl, "pkey", "-in", path, "-noout", "-text").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "ED25519") {
		t.Fatalf("openssl pkey: %v\n%s", err, out)
	}
}
