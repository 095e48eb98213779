package kafkasink

import (
	"bytes"
	"fmt"
	"io"
	"runtime"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/segmentio/kafka-go/compress"
	kafkazstd "github.com/segmentio/kafka-go/compress/zstd"
)

// batchLike is about what one producer batch carries: 500 records of
// about 500 bytes, alike but not equal; more than one 128 KiB zstd block,
// as a full batch of the agent's records is.
func batchLike() []byte {
	var b bytes.Buffer
	for i := range 2000 {
		fmt.Fprintf(&b, "host-%04d\x00bind\x00nginx\x00/usr/sbin/nginx\x00%d\x00127.0.0.1:%d\x00docker-%064x\x00", i%7, 40000+i, 1024+i, i)
	}
	return b.Bytes()
}

func compressWith(t testing.TB, c compress.Codec, data []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	w := c.NewWriter(&out)
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// TestSmallWindowZstd: batches read back with kafka-go's reader, and with a
// decoder that refuses any window over zstdWindow, so the frames really
// declare the small window; the ratio stays within a few percent of
// kafka-go's codec on a batch-sized input.
func TestSmallWindowZstd(t *testing.T) {
	data := batchLike()
	c := &smallWindowZstd{}
	for round := range 3 { // the second and third use a pooled encoder
		frame := compressWith(t, c, data)
		r := compress.ZstdCodec.NewReader(bytes.NewReader(frame))
		got, err := io.ReadAll(r)
		r.Close()
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("round %d: kafka-go's reader: %v, %d bytes back of %d", round, err, len(got), len(data))
		}
		strict, err := zstd.NewReader(bytes.NewReader(frame), zstd.WithDecoderMaxWindow(zstdWindow))
		if err != nil {
			t.Fatal(err)
		}
		if got, err := io.ReadAll(strict); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("round %d: a decoder allowing a %d-byte window: %v", round, zstdWindow, err)
		}
		strict.Close()
		theirs := compressWith(t, &compress.ZstdCodec, data)
		t.Logf("round %d: %d bytes -> %d with the small window, %d with kafka-go's codec", round, len(data), len(frame), len(theirs))
		if float64(len(frame)) > 1.05*float64(len(theirs)) {
			t.Fatalf("the small window compresses to %d bytes, kafka-go's codec to %d: more than 5%% worse", len(frame), len(theirs))
		}
	}
}

// BenchmarkZstdEncoderMemory: the heap an encoder allocates over three
// batches and keeps while writing one, for kafka-go's codec and the sink's,
// side by side. Encoders are pooled and
// reused, one per partition being written at once, so this is what the
// agent keeps resident per concurrent batch.
//
//	go test -run '^$' -bench ZstdEncoderMemory -benchtime 20x ./internal/kafkasink
func BenchmarkZstdEncoderMemory(b *testing.B) {
	data := batchLike()
	for _, tc := range []struct {
		name  string
		codec func() compress.Codec
	}{
		{"kafka-go", func() compress.Codec { return &kafkazstd.Codec{} }},
		{"sink", func() compress.Codec { return &smallWindowZstd{} }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var kept, allocated uint64
			for range b.N {
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				// Two batches: the second reuses the pooled encoder, as
				// every batch after the first does. A writer not yet
				// closed holds its encoder, as a batch in flight does.
				codec := tc.codec()
				for range 2 {
					w := codec.NewWriter(io.Discard)
					if _, err := w.Write(data); err != nil {
						b.Fatal(err)
					}
					if err := w.Close(); err != nil {
						b.Fatal(err)
					}
				}
				w := codec.NewWriter(io.Discard)
				if _, err := w.Write(data); err != nil {
					b.Fatal(err)
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				kept += after.HeapAlloc - min(after.HeapAlloc, before.HeapAlloc)
				allocated += after.TotalAlloc - before.TotalAlloc
				w.Close()
			}
			b.ReportMetric(float64(kept)/float64(b.N)/(1<<20), "MiB-kept/encoder")
			b.ReportMetric(float64(allocated)/float64(b.N)/(1<<20), "MiB-allocated/encoder")
		})
	}
}
