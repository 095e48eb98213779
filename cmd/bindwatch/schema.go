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
	record := fs.String("record", "bind_event", "which record: bind_event (the agent's events), listener_state or finding (the audit's topics)")
	version := fs.Int("version", 0, "schema version to print (default: the record's newest)")
	registry := fs.String("registry", "", "register the schema at this schema registry and print its id")
	topicName := fs.String("topic", config.Defaults().Kafka.Topic, "topic whose value subject (TOPIC-value) the schema is registered under")
	canonical := fs.Bool("canonical", false, "print the Parsing Canonical Form and its CRC-64-AVRO fingerprint instead")
	fs.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: bindwatch schema [--record R] [--version N] [--canonical] [--registry URL [--topic T]]\n\n"+
			"Prints the BindEvent Avro schema that bindwatch writes (versions 1..%d), or with\n"+
			"--record the audit's ListenerState or Finding schema.\n\n%s", schemas.Latest, fs.FlagUsages())
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	lookup, latest, topicFor := schemas.BindEventSchema, schemas.Latest, ""
	switch *record {
	case "bind_event":
	case "listener_state":
		lookup, latest, topicFor = schemas.ListenerStateSchema, schemas.ListenerStateLatest, "bindwatch.listeners"
	case "finding":
		lookup, latest, topicFor = schemas.FindingSchema, schemas.FindingLatest, "bindwatch.findings"
	default:
		return &usageError{err: fmt.Errorf("--record %q: want bind_event, listener_state or finding", *record), usage: fs.FlagUsages()}
	}
	if !fs.Changed("version") {
		*version = latest
	}
	if topicFor != "" && !fs.Changed("topic") {
		*topicName = topicFor
	}
	text, err := lookup(*version)
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
