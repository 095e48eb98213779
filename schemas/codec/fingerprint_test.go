package codec

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

func hex16(fp uint64) string { return fmt.Sprintf("%016x", fp) }

// rabinBitwise is CRC-64-AVRO one bit at a time, without the table: a second
// reading of the spec to check the table-driven one against.
func rabinBitwise(b []byte) uint64 {
	fp := rabinEmpty
	for _, c := range b {
		fp ^= uint64(c)
		for range 8 {
			if fp&1 == 1 {
				fp = fp>>1 ^ rabinEmpty
			} else {
				fp >>= 1
			}
		}
	}
	return fp
}

func TestFingerprint(t *testing.T) {
	tests := []struct {
		name, schema string
		want         uint64
	}{
		// The two vectors the specification's documentation and DESIGN.md quote.
		{"spec int", `"int"`, 0x7275d51a3f395c8f},
		{"spec null", `"null"`, 0x63dd24e7cc258f8a},
		// Same canonical form, same fingerprint.
		{"object int", `{"type":"int"}`, 0x7275d51a3f395c8f},
		{"timestamp-micros is long", `{"type":"long","logicalType":"timestamp-micros"}`, rabinBitwise([]byte(`"long"`))},
		{"doc does not count", `{"type":"record","name":"R","doc":"x","fields":[{"name":"a","type":"int","doc":"y"}]}`,
			rabinBitwise([]byte(`{"name":"R","type":"record","fields":[{"name":"a","type":"int"}]}`))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Fingerprint([]byte(tt.schema))
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("Fingerprint(%s) = %#016x, want %#016x", tt.schema, got, tt.want)
			}
		})
	}
}

func TestRabinTableMatchesBitwise(t *testing.T) {
	inputs := [][]byte{nil, {0}, {0, 0, 0}, {0xff}, []byte(`"string"`)}
	for i := range 256 {
		inputs = append(inputs, []byte{byte(i), byte(255 - i), byte(i * 7)})
	}
	if got := rabin64(nil); got != rabinEmpty {
		t.Errorf("rabin64(empty) = %#x, want EMPTY %#x", got, rabinEmpty)
	}
	for _, in := range inputs {
		if got, want := rabin64(in), rabinBitwise(in); got != want {
			t.Errorf("rabin64(% x) = %#016x, bitwise %#016x", in, got, want)
		}
	}
	// Leading zero bytes must change the value: that is why EMPTY is not 0.
	if rabin64([]byte{0}) == rabin64([]byte{0, 0}) {
		t.Error("leading zero bytes do not change the fingerprint")
	}
}

// python computes CRC-64-AVRO with its own bit-at-a-time code over the same
// canonical text: the fingerprints must agree for every test schema.
func TestFingerprintMatchesPython(t *testing.T) {
	paths, err := filepath.Glob("testdata/canonical/*.avsc")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no testdata/canonical/*.avsc: %v", err)
	}
	var forms []string
	var want []uint64
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		c, err := CanonicalForm(b)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		fp, err := Fingerprint(b)
		if err != nil {
			t.Fatal(err)
		}
		forms = append(forms, string(c))
		want = append(want, fp)
	}
	var py []string
	pyAvro(t, map[string]any{"op": "crc64", "texts": forms}, &py)
	for i, p := range paths {
		if hex16(want[i]) != py[i] {
			t.Errorf("%s: ours %016x, python %s", p, want[i], py[i])
		}
	}
}
