"""Reads a bindwatch spool directory using only the format in the spool
package's documentation, as a reader in another language would.

Prints one JSON object: the unacknowledged records in order (first sequence
number, and each message's key, value and time), the messages found lost,
and the damaged regions skipped.
"""
import json
import os
import re
import struct
import sys

POLY = 0x82F63B78  # CRC-32C, reflected
TABLE = []
for n in range(256):
    c = n
    for _ in range(8):
        c = (c >> 1) ^ POLY if c & 1 else c >> 1
    TABLE.append(c)


def crc32c(data, crc=0):
    crc ^= 0xFFFFFFFF
    for b in data:
        crc = TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def header_at(seg, off):
    """The header at off if it is authentic (magic and header CRC), else None."""
    h = seg[off:off + 32]
    if len(h) < 32 or h[0:4] != b"BWSR":
        return None
    if crc32c(h[0:24]) != struct.unpack_from("<I", h, 24)[0]:
        return None
    version, flags, kinds, first, count, length, _, rcrc = struct.unpack_from("<BBHQIIII", h, 4)
    return dict(version=version, flags=flags, kinds=kinds, first=first, count=count,
                length=length, crc=rcrc)


def supported(h):
    """Version 1 with flags and bytes 6..7 zero, or version 2 with no flag
    but bit 0 (dropped) and at least one payload byte a message."""
    if h["version"] == 1:
        return h["flags"] == 0 and h["kinds"] == 0
    return h["version"] == 2 and h["flags"] & ~1 == 0 and h["length"] >= h["count"]


def find_header(seg, start, limit):
    for p in range(start, limit):
        if header_at(seg, p) is not None:
            return p
    return limit


def walk(seg):
    off = 0
    while off < len(seg):
        h = header_at(seg, off)
        if h is None:
            end = find_header(seg, off + 1, len(seg))
            yield "garbage", off, end, None, None
            off = end
            continue
        end = off + 32 + h["length"]
        if end > len(seg):
            end = find_header(seg, off + 1, len(seg))
            yield "damaged", off, end, h, None
        elif not supported(h):
            yield "damaged", off, end, h, None
        elif h["flags"] & 1:
            yield "dropped", off, end, h, None
        elif crc32c(seg[off + 32:end], crc32c(seg[off:off + 28])) != h["crc"]:
            end = find_header(seg, off + 1, end)
            yield "damaged", off, end, h, None
        else:
            yield "record", off, end, h, seg[off + 32:end]
        off = end


def messages(h, payload):
    out, p = [], 0
    kinds = []
    if h["version"] == 2:
        kinds, p = list(payload[:h["count"]]), h["count"]
        assert all(h["kinds"] >> k & 1 for k in kinds), "a kind not in the header"
        assert sum(1 << k for k in set(kinds)) == h["kinds"], "header kinds not the messages'"
    for i in range(h["count"]):
        kl, vl, t = struct.unpack_from("<IIq", payload, p)
        p += 16
        key, value = payload[p:p + kl], payload[p + kl:p + kl + vl]
        p += kl + vl
        out.append(dict(key=key.decode("latin-1"), value=value.decode("latin-1"), time=t,
                        kind=kinds[i] if kinds else 0))
    assert p == len(payload), "payload not filled exactly"
    return out


def acked(path):
    try:
        with open(path, "rb") as f:
            b = f.read(1024)
    except FileNotFoundError:
        return None
    best = None
    for lo in (0, 512):
        s = b[lo:lo + 32]
        if len(s) < 32 or s[0:4] != b"BWSA" or s[4] != 1:
            continue
        if crc32c(s[0:28]) != struct.unpack_from("<I", s, 28)[0]:
            continue
        gen, nxt = struct.unpack_from("<QQ", s, 8)
        if best is None or gen > best[0]:
            best = (gen, nxt)
    return None if best is None else best[1]


def main(d):
    names = sorted(n for n in os.listdir(d) if re.fullmatch(r"[0-9]{20}\.seg", n))
    expected = acked(os.path.join(d, "ack"))
    records, lost, regions = [], 0, 0
    for name in names:
        with open(os.path.join(d, name), "rb") as f:
            seg = f.read()
        for kind, off, end, h, payload in walk(seg):
            if kind == "garbage":
                regions += 1
                continue
            if expected is None:
                expected = h["first"]
            stop = h["first"] + h["count"]
            if kind == "dropped":
                # Dropped in place to make room: counted when it was, not
                # a loss found here; like an acknowledged record.
                expected = max(expected, stop)
                continue
            if kind == "damaged":
                regions += 1
                if stop > expected:
                    lost += stop - expected
                    expected = stop
                continue
            if stop <= expected:
                continue  # acknowledged
            if h["first"] > expected:
                lost += h["first"] - expected
            records.append(dict(first=h["first"], messages=messages(h, payload)))
            expected = stop
    json.dump(dict(records=records, lost=lost, regions=regions), sys.stdout)


main(sys.argv[1])
