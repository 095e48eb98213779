package kafkasink

import "github.com/segmentio/kafka-go"

// MaxMessageBytes is the largest message Publish sends, as kafka-go counts
// it (messageSize). It is kafka-go's limit on one produce batch too, and sits
// below Kafka's default message.max.bytes (1048588) with room for the record
// batch header, so a message that passes here is not refused by a default
// broker for its size.
const MaxMessageBytes = 1_000_000

// messageSize is the size kafka-go's Writer gives a message when it checks it
// against BatchBytes (Message.totalSize, unexported): kafka-go refuses a
// whole WriteMessages call when one message exceeds it, so Publish must find
// such messages first to fail only them. TestMessageSizeMatchesKafkaGo holds
// this to kafka-go's own verdict at the limit.
func messageSize(m *kafka.Message) int64 {
	const fixed = 4 + 1 + 1 + 4 + 4 + 8 // crc, magic, attributes, key and value lengths, timestamp
	n := int64(fixed + len(m.Key) + len(m.Value))
	n += varintLen(len(m.Headers))
	for _, h := range m.Headers {
		n += varintLen(len(h.Key)) + int64(len(h.Key))
		n += varintLen(len(h.Value)) + int64(len(h.Value))
	}
	return n
}

// varintLen is the length of n as a zig-zag varint.
func varintLen(n int) int64 {
	u := uint64(n)<<1 ^ uint64(int64(n)>>63)
	l := int64(1)
	for u >= 0x80 {
		u >>= 7
		l++
	}
	return l
}
