package encode

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"github.com/bindwatch/bindwatch/schemas/codec"
	"os/exec"
	"slices"
	"testing"

	"github.com/bindwatch/bindwatch/schemas"
	"github.com/bindwatch/bindwatch/test/avrotest"
	"github.com/bindwatch/bindwatch/test/testenv"
)

// An independent verifier (testdata/verify_seals.py: python3-avro,
// pyca/cryptography and openssl, written from docs/schemas.md's seal format)
// verifies the seals the encode stage makes, in both framings, and refuses
// a seal whose records were changed by one bit.
func TestIndependentVerifierChecksSeals(t *testing.T) {
	avrotest.Require(t)
	if out, err := exec.Command(avrotest.Python, "-c", "import cryptography").CombinedOutput(); err != nil {
		testenv.Unavailable(t, "needs %s with pyca/cryptography (Debian package python3-cryptography): %v: %s", avrotest.Python, err, out)
	}
	text, err := schemas.BindEventSchema(schemas.Latest)
	if err != nil {
		t.Fatal(err)
	}
	single, _ := codec.NewSingleObject([]byte(text))
	confluent, _ := codec.NewConfluent([]byte(text), 7)
	for _, tc := range []struct {
		name string
		enc  codec.Encoder
	}{{"single-object", single}, {"confluent", confluent}} {
		t.Run(tc.name, func(t *testing.T) {
			s := testSealer(t)
			var msgs []string
			var seals []int64
			for _, b := range sealedBatches(t, tc.enc, s, 4, 1, 3) {
				for _, v := range b.Values {
					msgs = append(msgs, hex.EncodeToString(v))
					if ev := decodeEvent(t, text, v); ev.Kind == schemas.KindSeal {
						seals = append(seals, ev.Seq)
					}
				}
			}
			pub := hex.EncodeToString(s.Key.Public().(ed25519.PublicKey))
			got := verifySeals(t, text, pub, msgs)
			if !slices.Equal(got.Verified, seals) || len(got.Failed) != 0 || len(got.Covered) != 4+1+1+3 || got.OpenSSL == "fail" {
				t.Fatalf("independent verifier: %+v, want seals %v verified", got, seals)
			}
			t.Logf("verified by python (cryptography) and openssl: %+v", got)

			// One bit of the first bind changed (after the host key and its
			// seal): the seal of its run fails, the others still verify (a
			// seal says nothing of other runs).
			b, _ := hex.DecodeString(msgs[2])
			b[bytes.LastIndex(b, []byte("nc"))+1] ^= 1 // comm "nc" becomes "nb"
			msgs[2] = hex.EncodeToString(b)
			got = verifySeals(t, text, pub, msgs)
			if !slices.Equal(got.Failed, seals[1:2]) || !slices.Equal(got.Verified, append(seals[:1:1], seals[2:]...)) {
				t.Fatalf("after a changed bit: %+v", got)
			}
		})
	}
}

type verified struct {
	Seals    int     `json:"seals"`
	Verified []int64 `json:"verified"`
	Failed   []int64 `json:"failed"`
	Covered  []int64 `json:"covered"`
	OpenSSL  string  `json:"openssl"`
}

func verifySeals(t *testing.T, schema, pub string, msgs []string) verified {
	t.Helper()
	req, _ := json.Marshal(map[string]any{"schema": schema, "public_key": pub, "messages": msgs})
	cmd := exec.Command(avrotest.Python, "testdata/verify_seals.py")
	cmd.Stdin = bytes.NewReader(req)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("verify_seals.py: %v\n%s", err, stderr.String())
	}
	var v verified
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatalf("%s: %v", out, err)
	}
	return v
}
