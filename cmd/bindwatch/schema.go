package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/spf13/pflag"

	"github.com/bindwatch/bindwatch/internal/config"
	"github.com/bindwatch/bindwatch/pipeline/encode"
	"github.com/bindwatch/bindwatch/schemas"
)

func runSchema(args []string) error {
	fs := pflag.NewFlagSet("schema", pflag.ContinueOnError)
	version := fs.Int("version", schemas.Latest, "schema version to print")
	registry := fs.String("registry", "", "register the schema at this schema registry and print its id")
	topicName := fs.String("topic", config.Defaults().Kafka.Topic, "topic whose value subject (TOPIC-value) the schema is registered under")
	canonical := fs.Bool("canonical", false, "print the Parsing Canonical Form and its CRC-64-AVRO fingerprint instead")
	fs.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: bindwatch schema [--version N] [--canonical] [--registry URL [--topic T]]\n\n"+
			"Prints the BindEvent Avro schema that bindwatch writes (versions 1..%d).\n\n%s", schemas.Latest, fs.FlagUsages())
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	text, err := schemas.BindEventSchema(*version)
	if err != nil {
		return &usageError{err: err, usage: fs.FlagUsages()}
	}
	switch {
	case *registry != "":
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		subject := schemas.Subject(*topicName)
		id, err := encode.Register(ctx, *registry, subject, text)
		if err != nil {
			return err
		}
		fmt.Printf("subject %s version %d id %d\n", subject, *version, id)
	case *canonical:
		pcf, err := encode.CanonicalForm([]byte(text))
		if err != nil {
			return err
		}
		fp, err := encode.Fingerprint([]byte(text))
		if err != nil {
			return err
		}
		fmt.Printf("%s\nfingerprint (CRC-64-AVRO, little-endian in single-object messages): %#016x\n", pcf, fp)
	default:
		fmt.Print(text)
	}
	return nil
}
