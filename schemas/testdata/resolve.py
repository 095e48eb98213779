"""Schema resolution by Apache Avro's Python implementation (Debian's
python3-avro), as an independent reader for the compatibility test.

stdin: {"writer": schema text, "reader": schema text, "bodies": [hex, ...]}
stdout: [record, ...], each body read with DatumReader(writer, reader);
timestamps as integer microseconds since the epoch.
"""

import datetime
import io
import json
import sys

import avro.io
import avro.schema

EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


def plain(value):
    if isinstance(value, datetime.datetime):
        return (value - EPOCH) // datetime.timedelta(microseconds=1)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


def main():
    req = json.load(sys.stdin)
    writer = avro.schema.parse(req["writer"])
    reader = avro.schema.parse(req["reader"])
    out = []
    for h in req["bodies"]:
        body = bytes.fromhex(h)
        buf = io.BytesIO(body)
        rec = avro.io.DatumReader(writer, reader).read(avro.io.BinaryDecoder(buf))
        if buf.tell() != len(body):
            raise SystemExit("%d trailing bytes" % (len(body) - buf.tell()))
        out.append(plain(rec))
    json.dump(out, sys.stdout)


main()
