"""Reads topics with Confluent's Python client (Debian python3-confluent-kafka).

A DeserializingConsumer in a consumer group, keys through Confluent's
StringDeserializer and values through Confluent's Avro deserializer for the
registry wire format: magic byte 0, the schema id, looked up in the registry
with CachedSchemaRegistryClient, the body read with the registry's schema.

That deserializer is confluent_kafka.avro's MessageSerializer, which reads
with Apache Avro (python3-avro). The newer
confluent_kafka.schema_registry.avro.AvroDeserializer needs fastavro, which
Debian does not package.

argv: bootstrap servers, registry url, group id, then topic=count pairs.
Prints one JSON object a line per message: topic, partition, offset, key
and value (timestamps as microseconds since the epoch, null for a
tombstone). Fails when a topic does not give its count within 60 s.
"""

import datetime
import json
import sys
import time

from confluent_kafka import DeserializingConsumer
from confluent_kafka.avro import CachedSchemaRegistryClient
from confluent_kafka.avro.serializer.message_serializer import MessageSerializer
from confluent_kafka.serialization import StringDeserializer

EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


def plain(v):
    if isinstance(v, datetime.datetime):
        return (v - EPOCH) // datetime.timedelta(microseconds=1)
    if isinstance(v, dict):
        return {k: plain(x) for k, x in v.items()}
    if isinstance(v, list):
        return [plain(x) for x in v]
    if isinstance(v, bytes):
        return v.hex()
    return v


def main():
    brokers, registry, group = sys.argv[1:4]
    want = {}
    for arg in sys.argv[4:]:
        topic, n = arg.split("=")
        want[topic] = int(n)
    serializer = MessageSerializer(CachedSchemaRegistryClient({"url": registry}))

    def avro_value(data, ctx):
        return serializer.decode_message(data)

    c = DeserializingConsumer({
        "bootstrap.servers": brokers,
        "group.id": group,
        "auto.offset.reset": "earliest",
        "key.deserializer": StringDeserializer("utf_8"),
        "value.deserializer": avro_value,
    })
    c.subscribe(list(want))
    got = {t: 0 for t in want}
    deadline = time.monotonic() + 60
    while any(got[t] < want[t] for t in want):
        if time.monotonic() > deadline:
            sys.exit("timed out: got %r of %r" % (got, want))
        m = c.poll(1.0)
        if m is None:
            continue
        if m.error():
            sys.exit("consumer error: %s" % m.error())
        got[m.topic()] += 1
        print(json.dumps({
            "topic": m.topic(), "partition": m.partition(), "offset": m.offset(),
            "key": m.key(), "value": plain(m.value()),
        }, sort_keys=True))
    c.close()


if __name__ == "__main__":
    main()
