package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/bindwatch/bindwatch/audit/record"
	"github.com/bindwatch/bindwatch/internal/config"
	"github.com/bindwatch/bindwatch/internal/gaps"
	"github.com/bindwatch/bindwatch/internal/siem"
	"github.com/bindwatch/bindwatch/internal/topic"
	"github.com/bindwatch/bindwatch/schemas"
	"github.com/bindwatch/bindwatch/schemas/codec"
)

// consumeFlags say which topic to read and how far.
type consumeFlags struct {
	configPath    string
	brokers       string
	topic         string
	registry      string
	fromBeginning bool
	max           int
	timeout       time.Duration
	gaps          bool
	format        string
}

func consumeCommand() *cobra.Command {
	var f consumeFlags
	cmd := &cobra.Command{
		Use:   "consume --brokers B --topic T [--registry URL] [--from-beginning] [--max N] [--timeout D] [--gaps] [--format json|ecs|ocsf]",
		Short: "decode the topic's Avro messages to JSON lines",
		Long: "Decodes BindEvent and Finding messages (single-object or Confluent framing) to JSON lines,\n" +
			"one record a line: in schema field order (json), as ECS documents (ecs) or as OCSF events\n" +
			"(ocsf: Network Activity for bind, listen, close and snapshot, Detection Finding for findings;\n" +
			"the agent's other records have no OCSF class and are counted on stderr). docs/siem.md has the mappings.",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runConsume(cmd, f) },
	}
	fs := cmd.Flags()
	fs.StringVar(&f.configPath, "config", "", "read brokers, topic, registry, TLS and SASL settings from this agent config")
	fs.StringVar(&f.brokers, "brokers", "", "comma-separated bootstrap brokers (default: the config's, else 127.0.0.1:9092)")
	fs.StringVar(&f.topic, "topic", "", "topic to read (default: the config's)")
	fs.StringVar(&f.registry, "registry", "", "schema registry URL, for Confluent-framed messages (default: the config's)")
	fs.BoolVar(&f.fromBeginning, "from-beginning", false, "start at the oldest retained message instead of the end")
	fs.IntVar(&f.max, "max", 0, "stop after this many messages (0: no limit)")
	fs.DurationVar(&f.timeout, "timeout", 0, "stop after this long without a message (0: wait until Ctrl-C; 5s with --gaps)")
	fs.BoolVar(&f.gaps, "gaps", false, "read the whole topic and report missing sequence numbers per host and boot instead of printing events")
	fs.StringVar(&f.format, "format", "json", "output: json (the schema's fields), ecs (Elastic Common Schema "+siem.ECSVersion+") or ocsf (OCSF "+siem.OCSFVersion+")")
	completeWords(cmd, "format", consumeFormats...)
	return cmd
}

func runConsume(cmd *cobra.Command, f consumeFlags) (err error) {
	fs := cmd.Flags()
	if f.max < 0 || f.timeout < 0 {
		return usageErr(cmd, errors.New("--max and --timeout cannot be negative"))
	}
	if !slices.Contains(consumeFormats, f.format) {
		return usageErr(cmd, fmt.Errorf("--format %q: want one of %s", f.format, strings.Join(consumeFormats, ", ")))
	}
	if f.gaps {
		f.fromBeginning = true
		if f.timeout == 0 {
			f.timeout = 5 * time.Second
		}
	}
	cfg, err := config.Load(f.configPath, os.Environ(), nil)
	if err != nil {
		return err
	}
	if f.brokers != "" {
		cfg.Kafka.Brokers = strings.Split(f.brokers, ",")
	}
	if f.topic != "" {
		cfg.Kafka.Topic = f.topic
	}
	if fs.Changed("registry") {
		cfg.Schema.RegistryURL = f.registry
	}
	dialer, err := config.KafkaDialer(cfg.Kafka.ClientID, cfg.Kafka.TLS, cfg.Kafka.SASL, os.Environ())
	if err != nil {
		return err
	}
	dec, err := codec.NewDecoder(cfg.Schema.RegistryURL)
	if err != nil {
		return err
	}
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	var mapper *siemLines
	if f.format != "json" {
		if mapper, err = newSIEMLines(f.format, cfg.Schema.RegistryURL); err != nil {
			return err
		}
		defer mapper.report()
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	r, err := topic.Open(ctx, dialer, cfg.Kafka.Brokers, cfg.Kafka.Topic, f.fromBeginning)
	if err != nil {
		return err
	}
	defer r.Close()
	var tracker *gaps.Tracker
	if f.gaps {
		tracker = gaps.NewTracker()
		defer func() { err = reportGaps(out, tracker, err) }()
	}
	var line []byte
	for n := 0; f.max == 0 || n < f.max; n++ {
		waitCtx, cancel := ctx, context.CancelFunc(func() {})
		if f.timeout > 0 {
			waitCtx, cancel = context.WithTimeout(ctx, f.timeout)
		}
		m, err := r.Next(waitCtx)
		cancel()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) {
				return nil // interrupted, or idle for --timeout
			}
			return err
		}
		rec, err := dec.Decode(ctx, m.Value)
		if err != nil {
			// One bad message must not hide the rest: say which and go on.
			fmt.Fprintf(os.Stderr, "bindwatch consume: partition %d offset %d: %v\n", m.Partition, m.Offset, err)
			continue
		}
		if tracker != nil {
			if n := rec.Source.Name; n == schemas.FindingName || n == schemas.ListenerStateName {
				continue // the audit's records: no event seq
			}
			if err := trackRecord(tracker, rec); err != nil {
				fmt.Fprintf(os.Stderr, "bindwatch consume: partition %d offset %d: %v\n", m.Partition, m.Offset, err)
			}
			continue
		}
		if mapper != nil {
			if line, err = mapper.appendLine(line[:0], rec, m.Value); err != nil {
				fmt.Fprintf(os.Stderr, "bindwatch consume: partition %d offset %d: %v\n", m.Partition, m.Offset, err)
				continue
			}
		} else if line, err = rec.AppendJSONLine(line[:0]); err != nil {
			return err
		}
		out.Write(line) // empty for a record the format has no place for
		if r.Buffered() == 0 {
			out.Flush()
		}
	}
	return nil
}

// trackRecord adds one decoded event's identity to the gap tracker.
func trackRecord(t *gaps.Tracker, rec codec.Record) error {
	var host, hostID, bootID string
	var seq int64
	var haveSeq bool
	for _, f := range rec.Fields {
		switch f.Name {
		case "host":
			host, _ = f.Value.(string)
		case "host_id":
			hostID, _ = f.Value.(string)
		case "boot_id":
			bootID, _ = f.Value.(string)
		case "seq":
			seq, haveSeq = f.Value.(int64)
		}
	}
	if hostID == "" || bootID == "" || !haveSeq {
		return errors.New("event without host_id, boot_id or seq")
	}
	t.Add(host, hostID, bootID, uint64(seq))
	return nil
}

// reportGaps prints a line per host and boot, and fails when events are
// missing, so scripts and alerts can act on the exit status.
func reportGaps(out *bufio.Writer, t *gaps.Tracker, err error) error {
	if err != nil {
		return err
	}
	var missing uint64
	for _, r := range t.Reports() {
		fmt.Fprintln(out, r)
		missing += r.MissingCount()
	}
	out.Flush()
	if missing > 0 {
		return fmt.Errorf("%d events missing", missing)
	}
	return nil
}

// consumeFormats are consume's outputs.
var consumeFormats = []string{"json", "ecs", "ocsf"}

// siemLines writes records as ECS or OCSF JSON lines.
type siemLines struct {
	format string
	// findings reads Finding records as the audit does (every version,
	// v1's kind inferred), so older findings map as the newest.
	findings *record.Codec
	// skipped counts, by kind, the records OCSF has no class for.
	skipped map[string]int
}

func newSIEMLines(format, registryURL string) (*siemLines, error) {
	codec, err := record.NewCodec()
	if err != nil {
		return nil, err
	}
	if registryURL != "" {
		if err := codec.ReadRegistry(registryURL); err != nil {
			return nil, err
		}
	}
	return &siemLines{format: format, findings: codec, skipped: map[string]int{}}, nil
}

// appendLine appends rec (msg decoded) as one line, or nothing for a record
// the format has no place for.
func (s *siemLines) appendLine(dst []byte, rec codec.Record, msg []byte) ([]byte, error) {
	var doc map[string]any
	switch rec.Source.Name {
	case schemas.FindingName:
		f, err := s.findings.DecodeFinding(msg)
		if err != nil {
			return dst, err
		}
		fields := siem.FindingFields(record.ToSchema(&f))
		if s.format == "ecs" {
			doc = siem.ECSFinding(fields)
		} else {
			doc = siem.OCSFFinding(fields)
		}
	case schemas.ListenerStateName:
		return dst, errors.New("a listener state record: ecs and ocsf map events and findings (read the state topic with bindwatch listeners --brokers)")
	default: // BindEvent, or a foreign schema read by field name
		fields := siem.Fields(rec.Map())
		if s.format == "ecs" {
			doc = siem.ECSEvent(fields)
			break
		}
		var ok bool
		if doc, ok = siem.OCSFEvent(fields); !ok {
			kind, _ := fields["kind"].(string)
			s.skipped[kind]++
			return dst, nil
		}
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return dst, err
	}
	return append(append(dst, b...), '\n'), nil
}

// report says on stderr what OCSF had no class for.
func (s *siemLines) report() {
	for _, kind := range slices.Sorted(maps.Keys(s.skipped)) {
		fmt.Fprintf(os.Stderr, "bindwatch consume: %d %s records skipped: OCSF Network Activity is about sockets\n", s.skipped[kind], kind)
	}
}
