"""Verifies a bindwatch host's seals without bindwatch's code: Apache Avro's
Python reader (python3-avro) for the records, pyca/cryptography
(python3-cryptography) for Ed25519, and openssl pkeyutl for a second
opinion, following docs/schemas.md's "Seal format" and nothing else.

Reads one JSON request on stdin:
  {"schema": text, "public_key": hex, "messages": [hex, ...]}
(the Kafka message values of one host, in partition order) and writes
  {"seals": n, "verified": [seal seq, ...], "failed": [seal seq, ...],
   "covered": [seq, ...], "openssl": "ok" | "fail" | "absent"}
"""

import hashlib
import io
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

import avro.io
import avro.schema
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


def body_of(msg):
    if msg[:2] == b"\xc3\x01":
        return msg[10:]  # single-object: C3 01, 8-byte fingerprint
    if msg[:1] == b"\x00":
        return msg[5:]  # Confluent: 00, 4-byte schema id
    raise ValueError("unknown framing")


def lp(s):
    b = s.encode("utf-8")
    return struct.pack(">I", len(b)) + b


def seal_message(seal, bodies):
    m = b"bindwatch seal v1\x00" + lp(seal["host_id"]) + lp(seal["boot_id"])
    m += struct.pack(">q", seal["seq"]) + struct.pack(">I", len(seal["sealed_seqs"]))
    for seq in seal["sealed_seqs"]:
        m += struct.pack(">q", seq) + hashlib.sha256(bodies[seq]).digest()
    return m


def openssl_verify(pub, message, sig):
    if shutil.which("openssl") is None:
        return "absent"
    with tempfile.TemporaryDirectory() as d:
        paths = {n: os.path.join(d, n) for n in ("pub.pem", "msg", "sig")}
        with open(paths["pub.pem"], "wb") as f:
            f.write(pub.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
        with open(paths["msg"], "wb") as f:
            f.write(message)
        with open(paths["sig"], "wb") as f:
            f.write(sig)
        r = subprocess.run(["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", paths["pub.pem"], "-rawin",
                            "-in", paths["msg"], "-sigfile", paths["sig"]], capture_output=True)
        return "ok" if r.returncode == 0 else "fail"


def main():
    req = json.load(sys.stdin)
    schema = avro.schema.parse(req["schema"])
    reader = avro.io.DatumReader(schema)
    pub = Ed25519PublicKey.from_public_bytes(bytes.fromhex(req["public_key"]))
    bodies = {}
    out = {"seals": 0, "verified": [], "failed": [], "covered": [], "openssl": "absent"}
    first = True
    for h in req["messages"]:
        body = body_of(bytes.fromhex(h))
        rec = reader.read(avro.io.BinaryDecoder(io.BytesIO(body)))
        if rec["kind"] != "seal":
            bodies[rec["seq"]] = body
            continue
        out["seals"] += 1
        message = seal_message(rec, bodies)
        try:
            pub.verify(rec["signature"], message)
            out["verified"].append(rec["seq"])
            out["covered"].extend(rec["sealed_seqs"])
        except InvalidSignature:
            out["failed"].append(rec["seq"])
        if first:
            out["openssl"] = openssl_verify(pub, message, rec["signature"])
            first = False
    json.dump(out, sys.stdout)


main()
