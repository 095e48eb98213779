// Package codec is the one place bindwatch's record format is known: it
// turns BindEvents into framed Avro messages for Kafka and back, for the
// agent and the audit alike. Messages are Avro single-object encoded when no
// schema registry is configured, in the Confluent wire format when one is;
// both framings are always read.
//
// Every reader and writer walks one plan compiled from the schema text
// (Compile, plan.go): the agent's hand writer checks each field's type
// against it, the audit's fast reader walks it, and fingerprints come from
// the same text's canonical form. Fingerprints, canonical forms and the
// encoder's hot path are written here from the Avro specification; the Avro
// library (hamba/avro/v2, unmaintained upstream) is confined to
// codec_hamba.go, which decodes messages of any schema generically, the
// versioned codec of the audit's records and registry.go.
//
// It sits on the floor below both programs: it imports schemas and nothing
// else of bindwatch.
package codec
