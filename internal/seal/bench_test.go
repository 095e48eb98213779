package seal

import (
	"crypto/ed25519"
	"crypto/sha256"
	"testing"
)

// BenchmarkVerify is one seal's verification as the audit makes it: the
// message of a batch of 500 records (their digests already computed, one
// SHA-256 per record as it arrives) and one Ed25519 verification.
func BenchmarkVerify(b *testing.B) {
	pub, key, _ := ed25519.GenerateKey(nil)
	m := NewMessage(nil, "3d1219c7c4c5404aaa1f6d2a48adfda4", "d4b7801b-bb9d-429a-86eb-3b9b74ac0ce1", 501)
	for i := range 500 {
		m.AddDigest(int64(i), sha256.Sum256([]byte{byte(i)}))
	}
	msg := m.Bytes()
	sig := ed25519.Sign(key, msg)
	b.ReportAllocs()
	for b.Loop() {
		if !Verify(pub, msg, sig) {
			b.Fatal("does not verify")
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "verifications/s")
}

// BenchmarkDigest is the per-record cost: the SHA-256 of a 250-byte body.
func BenchmarkDigest(b *testing.B) {
	body := make([]byte, 250)
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		sha256.Sum256(body)
	}
}
