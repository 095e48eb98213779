package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/bindwatch/bindwatch/internal/config"
	"github.com/bindwatch/bindwatch/schemas"
	"github.com/bindwatch/bindwatch/schemas/codec"
)

func schemaCommand() *cobra.Command {
	var o schemaFlags
	cmd := &cobra.Command{
		Use:   "schema [--record R] [--version N] [--canonical] [--registry URL [--topic T]]",
		Short: "print the Avro schema, or register it",
		Long: fmt.Sprintf("Prints the BindEvent Avro schema that bindwatch writes (versions 1..%d), or with\n"+
			"--record the audit's ListenerState or Finding schema.", schemas.Latest),
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runSchema(cmd, o) },
	}
	fs := cmd.Flags()
	fs.StringVar(&o.record, "record", "bind_event", "which record: bind_event (the agent's events), listener_state or finding (the audit's topics)")
	fs.IntVar(&o.version, "version", 0, "schema version to print (default: the record's newest)")
	fs.StringVar(&o.registry, "registry", "", "register the schema at this schema registry and print its id")
	fs.StringVar(&o.topic, "topic", config.Defaults().Kafka.Topic, "topic whose value subject (TOPIC-value) the schema is registered under")
	fs.BoolVar(&o.canonical, "canonical", false, "print the Parsing Canonical Form and its CRC-64-AVRO fingerprint instead")
	completeWords(cmd, "record", "bind_event", "listener_state", "finding")
	return cmd
}

// schemaFlags say which schema to print or register.
type schemaFlags struct {
	record, registry, topic string
	version                 int
	canonical               bool
}

func runSchema(cmd *cobra.Command, o schemaFlags) error {
	fs := cmd.Flags()
	lookup, latest, topicFor := schemas.BindEventSchema, schemas.Latest, ""
	switch o.record {
	case "bind_event":
	case "listener_state":
		lookup, latest, topicFor = schemas.ListenerStateSchema, schemas.ListenerStateLatest, "bindwatch.listeners"
	case "finding":
		lookup, latest, topicFor = schemas.FindingSchema, schemas.FindingLatest, "bindwatch.findings"
	default:
		return usageErr(cmd, fmt.Errorf("--record %q: want bind_event, listener_state or finding", o.record))
	}
	if !fs.Changed("version") {
		o.version = latest
	}
	if topicFor != "" && !fs.Changed("topic") {
		o.topic = topicFor
	}
	text, err := lookup(o.version)
	if err != nil {
		return usageErr(cmd, err)
	}
	switch {
	case o.registry != "":
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		subject := schemas.Subject(o.topic)
		id, err := codec.Register(ctx, o.registry, subject, text)
		if err != nil {
			return err
		}
		fmt.Printf("subject %s version %d id %d\n", subject, o.version, id)
	case o.canonical:
		pcf, err := codec.CanonicalForm([]byte(text))
		if err != nil {
			return err
		}
		fp, err := codec.Fingerprint([]byte(text))
		if err != nil {
			return err
		}
		fmt.Printf("%s\nfingerprint (CRC-64-AVRO, little-endian in single-object messages): %#016x\n", pcf, fp)
	default:
		fmt.Print(text)
	}
	return nil
}
