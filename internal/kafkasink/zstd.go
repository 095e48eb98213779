package kafkasink

import (
	"io"
	"sync"

	"github.com/klauspost/compress/zstd"
	"github.com/segmentio/kafka-go/compress"
)

// zstdWindow is the zstd window of the record batches the sink writes. A
// producer batch is at most pipeline.batch_size messages of a few hundred
// bytes, so a window larger than a batch finds no more matches (the same
// bytes out, TestSmallWindowZstd); but the encoder sizes its history by the
// window, and kafka-go's codec uses zstd's default 8 MiB: a 16 MiB history
// on the first batch over one 128 KiB block, which was the largest item in
// a heap profile of the agent under a 50k binds/s storm, and a heap goal
// raised by as much. BenchmarkZstdEncoderMemory: 18 MiB allocated and
// 1.8 MiB kept per encoder for kafka-go's codec, 2.1 and 0.2 for this one.
const zstdWindow = 256 << 10

// smallWindowZstd is kafka-go's zstd codec with the window above: the same
// level (kafka-go's default, zstd level 3), the same frame options, and
// kafka-go's own reader.
type smallWindowZstd struct {
	encoders sync.Pool // *zstd.Encoder
}

func (*smallWindowZstd) Code() int8   { return compress.ZstdCodec.Code() }
func (*smallWindowZstd) Name() string { return compress.ZstdCodec.Name() }

func (*smallWindowZstd) NewReader(r io.Reader) io.ReadCloser {
	return compress.ZstdCodec.NewReader(r)
}

func (c *smallWindowZstd) NewWriter(w io.Writer) io.WriteCloser {
	if enc, _ := c.encoders.Get().(*zstd.Encoder); enc != nil {
		enc.Reset(w)
		return &zstdWriter{codec: c, enc: enc}
	}
	enc, err := zstd.NewWriter(w,
		zstd.WithEncoderLevel(zstd.SpeedDefault),
		zstd.WithEncoderConcurrency(1),
		zstd.WithZeroFrames(true),
		zstd.WithWindowSize(zstdWindow),
		zstd.WithLowerEncoderMem(true),
	)
	return &zstdWriter{codec: c, enc: enc, err: err}
}

// zstdWriter returns its encoder to the pool when closed.
type zstdWriter struct {
	codec *smallWindowZstd
	enc   *zstd.Encoder
	err   error
}

func (w *zstdWriter) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	return w.enc.Write(p)
}

func (w *zstdWriter) Close() error {
	if w.enc == nil {
		return w.err
	}
	err := w.enc.Close()
	w.enc.Reset(io.Discard) // keep no reference to the batch's buffer
	w.codec.encoders.Put(w.enc)
	w.enc = nil
	return err
}

var installZstd sync.Once

// useSmallWindowZstd makes kafka-go write zstd batches with smallWindowZstd.
// kafka-go looks codecs up in a process-wide table by compression type, and
// a Writer cannot be given its own, so the table entry is replaced, once;
// reading is kafka-go's own reader either way.
func useSmallWindowZstd() {
	installZstd.Do(func() { compress.Codecs[compress.Zstd] = &smallWindowZstd{} })
}
