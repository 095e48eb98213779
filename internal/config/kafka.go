package config

import (
	"fmt"

	"github.com/segmentio/kafka-go"

	"github.com/bindwatch/bindwatch/internal/kafkaconn"
	"github.com/bindwatch/bindwatch/internal/kafkasink"
)

// KafkaSink is the producer's configuration: the kafka.* keys, the batch
// size of the pipeline, and the SASL password read from its file or
// variable in environ (os.Environ() in production).
func (c *Config) KafkaSink(environ []string) (kafkasink.Config, error) {
	k := c.Kafka
	sasl, err := k.SASL.Conn(environ)
	if err != nil {
		return kafkasink.Config{}, err
	}
	return kafkasink.Config{
		Brokers:     k.Brokers,
		Topic:       k.Topic,
		ClientID:    k.ClientID,
		Acks:        k.Acks,
		Compression: k.Compression,
		// A batch also carries its seal and, now and then, the host key:
		// one produce request still takes it whole.
		BatchSize:    c.Pipeline.BatchSize + 2,
		BatchTimeout: k.BatchTimeout,
		WriteTimeout: k.WriteTimeout,
		TLS:          k.TLS,
		SASL:         sasl,
	}, nil
}

// Conn is the SASL configuration with the password read from its file or
// variable in environ.
func (s KafkaSASL) Conn(environ []string) (kafkaconn.SASL, error) {
	conn := kafkaconn.SASL{Mechanism: s.Mechanism, Username: s.Username}
	if s.Mechanism != SASLNone && s.Mechanism != "" {
		secret, err := s.Secret(environ)
		if err != nil {
			return conn, fmt.Errorf("kafka.sasl: %w", err)
		}
		conn.Password = secret
	}
	return conn, nil
}

// KafkaDialer dials the brokers as the producer would (TLS, SASL), for the
// commands that read topics back. An empty client id is the producer's
// default, as it always was for these readers.
func KafkaDialer(clientID string, tls KafkaTLS, sasl KafkaSASL, environ []string) (*kafka.Dialer, error) {
	if clientID == "" {
		clientID = kafkasink.DefaultConfig().ClientID
	}
	conn, err := sasl.Conn(environ)
	if err != nil {
		return nil, err
	}
	return kafkaconn.Dialer(clientID, tls, conn)
}
