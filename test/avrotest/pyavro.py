"""Independent checks by Apache Avro's Python implementation (Debian's
python3-avro) for bindwatch's tests (test/avrotest).

Reads one JSON request on stdin, writes one JSON answer on stdout:
  {"op": "canonical", "schemas": [text, ...]}  -> [canonical_form, ...]
  {"op": "crc64", "texts": [text, ...]}       -> ["%016x", ...]
  {"op": "decode", "schema": text, "messages": [hex, ...]}
      -> [{"framing", "fingerprint" | "schema_id", "record"}, ...]
  {"op": "resolve", "writer": text, "reader": text, "bodies": [hex, ...]}
      -> [record, ...], each unframed body read with
         DatumReader(writer, reader): schema resolution
Timestamps come back as integer microseconds since the epoch, so the Go
side compares exact values rather than formatted text.
"""

import datetime
import io
import json
import sys

import avro.io
import avro.schema

EMPTY = 0xC15D213AA4D7A795
MASK = (1 << 64) - 1


def crc64_avro(data):
    # Bit at a time, straight from the specification's polynomial: no table,
    # so it shares nothing with the Go implementation but the definition.
    fp = EMPTY
    for byte in data:
        fp ^= byte
        for _ in range(8):
            fp = (fp >> 1) ^ (EMPTY if fp & 1 else 0)
    return fp & MASK


EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


def plain(value):
    if isinstance(value, datetime.datetime):
        return (value - EPOCH) // datetime.timedelta(microseconds=1)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, bytes):
        return value.hex()  # JSON has no bytes: hex, as Go's tests print them
    return value


def decode(schema_text, hex_message):
    msg = bytes.fromhex(hex_message)
    out = {}
    if msg[:2] == b"\xc3\x01":
        out["framing"] = "single-object"
        out["fingerprint"] = "%016x" % int.from_bytes(msg[2:10], "little")
        body = msg[10:]
    elif msg[:1] == b"\x00":
        out["framing"] = "confluent"
        out["schema_id"] = int.from_bytes(msg[1:5], "big")
        body = msg[5:]
    else:
        raise SystemExit("unknown framing: %s" % msg[:4].hex())
    schema = avro.schema.parse(schema_text)
    buf = io.BytesIO(body)
    record = avro.io.DatumReader(schema).read(avro.io.BinaryDecoder(buf))
    left = len(body) - buf.tell()
    if left:
        raise SystemExit("%d trailing bytes after the record" % left)
    out["record"] = plain(record)
    return out


def resolve(writer_text, reader_text, hex_bodies):
    writer = avro.schema.parse(writer_text)
    reader = avro.schema.parse(reader_text)
    out = []
    for h in hex_bodies:
        body = bytes.fromhex(h)
        buf = io.BytesIO(body)
        rec = avro.io.DatumReader(writer, reader).read(avro.io.BinaryDecoder(buf))
        if buf.tell() != len(body):
            raise SystemExit("%d trailing bytes" % (len(body) - buf.tell()))
        out.append(plain(rec))
    return out


def main():
    req = json.load(sys.stdin)
    op = req["op"]
    if op == "canonical":
        ans = [avro.schema.parse(s).canonical_form for s in req["schemas"]]
    elif op == "crc64":
        ans = ["%016x" % crc64_avro(t.encode("utf-8")) for t in req["texts"]]
    elif op == "decode":
        ans = [decode(req["schema"], m) for m in req["messages"]]
    elif op == "resolve":
        ans = resolve(req["writer"], req["reader"], req["bodies"])
    else:
        raise SystemExit("unknown op " + op)
    json.dump(ans, sys.stdout)


main()
