package spool

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/v1.seg from the encoder")

func TestCRC32CCheckValue(t *testing.T) {
	// The check value the package documentation quotes for other readers.
	if got := crc32.Checksum([]byte("123456789"), castagnoli); got != 0xE3069283 {
		t.Fatalf("CRC-32C(123456789) = %08x, want e3069283", got)
	}
}

func TestRecordRoundTrip(t *testing.T) {
	when := time.Date(2025, 3, 1, 12, 0, 0, 123456789, time.UTC)
	tests := []struct {
		name  string
		first uint64
		msgs  []Message
	}{
		{"one message", 0, []Message{{Key: []byte("host"), Value: []byte("value"), Time: when}}},
		{"no key", 7, []Message{{Value: []byte("v")}}},
		{"no value", 1 << 40, []Message{{Key: []byte("k")}}},
		{"neither", 3, []Message{{}}},
		{"zero time kept zero", 1, []Message{{Key: []byte("k"), Value: []byte("v")}}},
		{"binary and magic inside", 9, []Message{{Key: []byte{0, 0xff}, Value: append(recordMagic[:], 0, 1, 2)}}},
		{"500 messages", 123, batchOf(1, 500, 200)},
		{"large value", 0, []Message{{Key: []byte("k"), Value: bytes.Repeat([]byte{0xa5}, 3<<20)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := appendRecord([]byte("prefix"), tt.first, tt.msgs)[len("prefix"):]
			if int64(len(rec)) != recordSize(tt.msgs) {
				t.Fatalf("record is %d bytes, recordSize says %d", len(rec), recordSize(tt.msgs))
			}
			h, err := parseHeader(rec)
			if err != nil {
				t.Fatalf("parseHeader: %v", err)
			}
			if h.first != tt.first || int(h.count) != len(tt.msgs) || h.size() != int64(len(rec)) {
				t.Fatalf("header %+v, want first %d count %d size %d", h, tt.first, len(tt.msgs), len(rec))
			}
			if !checkPayload(rec, h, rec[headerSize:]) {
				t.Fatal("record CRC does not match")
			}
			got, err := decodePayload(h, rec[headerSize:])
			if err != nil {
				t.Fatalf("decodePayload: %v", err)
			}
			if len(got) != len(tt.msgs) {
				t.Fatalf("%d messages, want %d", len(got), len(tt.msgs))
			}
			for i := range got {
				w := tt.msgs[i]
				if !bytes.Equal(got[i].Key, w.Key) || !bytes.Equal(got[i].Value, w.Value) || !got[i].Time.Equal(w.Time) || got[i].Time.IsZero() != w.Time.IsZero() {
					t.Fatalf("message %d = %+v, want %+v", i, got[i], w)
				}
			}
		})
	}
}

// reheader recomputes both CRCs after a test edits a header field, so the
// edit is seen as authentic.
func reheader(rec []byte) {
	binary.LittleEndian.PutUint32(rec[24:28], crc32.Checksum(rec[0:24], castagnoli))
	crc := crc32.Update(crc32.Checksum(rec[0:28], castagnoli), castagnoli, rec[headerSize:])
	binary.LittleEndian.PutUint32(rec[28:32], crc)
}

func TestParseHeader(t *testing.T) {
	good := appendRecord(nil, 5, batchOf(0, 3, 10))
	tests := []struct {
		name string
		edit func(b []byte) []byte
		want error // nil, errNoHeader or errUnsupported
	}{
		{"intact", func(b []byte) []byte { return b }, nil},
		{"short", func(b []byte) []byte { return b[:headerSize-1] }, errNoHeader},
		{"magic", func(b []byte) []byte { b[0] ^= 1; return b }, errNoHeader},
		{"first flipped", func(b []byte) []byte { b[9] ^= 0x10; return b }, errNoHeader},
		{"count flipped", func(b []byte) []byte { b[16] ^= 1; return b }, errNoHeader},
		{"length flipped", func(b []byte) []byte { b[23] ^= 0x80; return b }, errNoHeader},
		{"header crc flipped", func(b []byte) []byte { b[26] ^= 4; return b }, errNoHeader},
		{"record crc flipped is not the header's business", func(b []byte) []byte { b[30] ^= 4; return b }, nil},
		{"version 3", func(b []byte) []byte { b[4] = 3; reheader(b); return b }, errUnsupported},
		{"unknown flag set", func(b []byte) []byte { b[5] = 2; reheader(b); return b }, errUnsupported},
		{"version 1 with the dropped flag", func(b []byte) []byte { b[4], b[5] = 1, 1; reheader(b); return b }, errUnsupported},
		{"version 1 with kinds", func(b []byte) []byte { b[4], b[7] = 1, 1; reheader(b); return b }, errUnsupported},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.edit(bytes.Clone(good))
			h, err := parseHeader(b)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("parseHeader: %v", err)
				}
				if h.first != 5 || h.count != 3 {
					t.Fatalf("header %+v", h)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("parseHeader error %v, want %v", err, tt.want)
			}
			if tt.want == errUnsupported && h.size() != int64(len(good)) {
				t.Fatalf("unsupported header must still give the record size: %d, want %d", h.size(), len(good))
			}
		})
	}
}

func TestDecodePayloadRefuses(t *testing.T) {
	msg := func(kl, vl uint32, body int) []byte {
		b := binary.LittleEndian.AppendUint32(nil, kl)
		b = binary.LittleEndian.AppendUint32(b, vl)
		b = binary.LittleEndian.AppendUint64(b, 0)
		return append(b, make([]byte, body)...)
	}
	tests := []struct {
		name    string
		count   uint32
		payload []byte
		want    string
	}{
		{"count beyond payload", 1 << 30, msg(0, 0, 0), "cannot fit"},
		{"key past end", 1, msg(100, 0, 10), "needs 100 bytes"},
		{"lengths overflow together", 1, msg(0xffffffff, 0xffffffff, 4), "needs"},
		{"bytes after last", 1, msg(1, 1, 3), "after the last message"},
		{"second message header cut", 2, append(msg(0, 0, 0), make([]byte, 17)...)[:messageHeader+messageHeader-1], "cannot fit"},
		{"second message header cut, room by count", 2, append(msg(1, 0, 1), make([]byte, 15)...), "header cut"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decodePayload(header{version: recordV1, count: tt.count, length: uint32(len(tt.payload))}, tt.payload)
			if !errors.Is(err, errPayload) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("decodePayload error %v, want errPayload with %q", err, tt.want)
			}
		})
	}
}

// goldenBatches are the contents of testdata/v1.seg.
func goldenBatches() [][]Message {
	return [][]Message{
		{{Key: []byte("host-1"), Value: []byte("first event"), Time: time.Unix(1700000000, 5)}},
		{{Key: []byte("host-1"), Value: []byte("second")}, {Value: []byte("third, no key")}},
	}
}

// TestGoldenSegment pins the version 1 format: the encoder must produce the
// committed file byte for byte, so a change to the layout cannot go
// unnoticed by readers written from the documentation.
func TestGoldenSegment(t *testing.T) {
	var seg []byte
	var seq uint64 = 41
	for _, b := range goldenBatches() {
		seg = appendRecordVersion(seg, recordV1, seq, b)
		seq += uint64(len(b))
	}
	path := filepath.Join("testdata", "v1.seg")
	if *update {
		if err := os.WriteFile(path, seg, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(seg, want) {
		t.Fatalf("encoder output differs from %s:\n got %x\nwant %x", path, seg, want)
	}
	// The first record's header, spelled out from the documentation.
	hdr := want[:headerSize]
	if string(hdr[0:4]) != "BWSR" || hdr[4] != 1 || hdr[5] != 0 ||
		binary.LittleEndian.Uint64(hdr[8:16]) != 41 || binary.LittleEndian.Uint32(hdr[16:20]) != 1 ||
		binary.LittleEndian.Uint32(hdr[20:24]) != 16+6+11 {
		t.Fatalf("first header %x does not follow the documented layout", hdr)
	}
	if binary.LittleEndian.Uint64(want[headerSize+8:]) != uint64(time.Unix(1700000000, 5).UnixNano()) {
		t.Fatal("first message time is not Unix nanoseconds at payload offset 8")
	}
}
