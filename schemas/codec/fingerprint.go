package codec

import "fmt"

// rabinEmpty is the CRC-64-AVRO value of the empty input. It is also the
// (reflected) polynomial: the spec prepends a one bit to every message by
// starting from it rather than from zero, so leading zero bytes still count.
const rabinEmpty uint64 = 0xc15d213aa4d7a795

var rabinTable = func() (t [256]uint64) {
	for i := range t {
		fp := uint64(i)
		for range 8 {
			fp = (fp >> 1) ^ (rabinEmpty & -(fp & 1))
		}
		t[i] = fp
	}
	return t
}()

// rabin64 is the specification's CRC-64-AVRO fingerprint of b.
func rabin64(b []byte) uint64 {
	fp := rabinEmpty
	for _, c := range b {
		fp = (fp >> 8) ^ rabinTable[byte(fp)^c]
	}
	return fp
}

// Fingerprint returns the CRC-64-AVRO fingerprint of the schema's Parsing
// Canonical Form: the 8 bytes single-object encoding puts after C3 01, and
// what readers following the spec look the writer's schema up by.
func Fingerprint(schemaJSON []byte) (uint64, error) {
	canon, err := CanonicalForm(schemaJSON)
	if err != nil {
		return 0, fmt.Errorf("fingerprint: %w", err)
	}
	return rabin64(canon), nil
}
