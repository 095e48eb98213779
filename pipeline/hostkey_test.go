package pipeline

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/bindwatch/bindwatch/internal/seal"
)

// A key put in host.key.next replaces host.key at start, the old one kept
// as host.key.old, from which every start announces the rotation.
func TestHostKeyRotation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "host.key")
	first, prev, err := loadHostKey(path, discardLogger())
	if err != nil || prev != nil {
		t.Fatalf("first start: previous %v, %v", prev != nil, err)
	}
	other := filepath.Join(t.TempDir(), "k")
	next, _, err := seal.LoadOrCreate(other)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(other, path+".next"); err != nil {
		t.Fatal(err)
	}
	for range 2 { // the rotation is announced at each start while .old is there
		key, prev, err := loadHostKey(path, discardLogger())
		if err != nil || !key.Equal(next) || !prev.Equal(first) {
			t.Fatalf("after rotation: new key %v, previous the old one %v, %v", key.Equal(next), prev.Equal(first), err)
		}
	}
	if _, err := os.Stat(path + ".next"); !os.IsNotExist(err) {
		t.Fatalf("host.key.next still there: %v", err)
	}
}
