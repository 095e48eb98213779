package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/segmentio/kafka-go"
	"github.com/spf13/cobra"

	auditconfig "github.com/bindwatch/bindwatch/audit/config"
	"github.com/bindwatch/bindwatch/audit/learn"
	"github.com/bindwatch/bindwatch/audit/policy"
	"github.com/bindwatch/bindwatch/audit/stream"
	"github.com/bindwatch/bindwatch/internal/metrics"
)

func auditCommand() *cobra.Command {
	var o auditFlags
	cmd := &cobra.Command{
		Use:   "audit --config FILE [--policy FILE]\naudit --config FILE --learn DURATION --write-policy FILE",
		Short: "find unexpected listeners across the fleet: a Kafka consumer-group member",
		Long: "A member of a consumer group on the events topic: keeps every host's listeners,\n" +
			"publishes them to the compacted listeners topic, and publishes (and prints, as\n" +
			"JSON lines) a finding for each listener no allow rule matches and each require\n" +
			"rule a host does not meet. SIGHUP reloads the policy; SIGINT or SIGTERM stop.",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runAudit(cmd, o) },
	}
	fs := cmd.Flags()
	fs.StringVar(&o.configPath, "config", "", "audit configuration file (configs/audit.yaml)")
	fs.StringVar(&o.policyPath, "policy", "", "policy file (default: the config's audit.policy)")
	fs.StringSliceVar(&o.brokers, "brokers", nil, "bootstrap brokers (default: the config's kafka.brokers)")
	fs.DurationVar(&o.learnFor, "learn", 0, "watch this long and write the policy that would have allowed everything seen")
	fs.StringVar(&o.writePolicy, "write-policy", "", "with --learn: the file to write the learned policy to")
	return cmd
}

// auditFlags are bindwatch audit's command line.
type auditFlags struct {
	configPath, policyPath, writePolicy string
	brokers                             []string
	learnFor                            time.Duration
}

// runAudit is one member of the audit's consumer group, or, with --learn,
// a watcher that writes the policy allowing what it saw.
func runAudit(cmd *cobra.Command, o auditFlags) error {
	// Catch SIGHUP before anything else: its default action would end us.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	if (o.learnFor > 0) != (o.writePolicy != "") {
		return usageErr(cmd, errors.New("--learn and --write-policy go together"))
	}
	cfg, err := auditconfig.Load(o.configPath)
	if err != nil {
		return err
	}
	if len(o.brokers) > 0 {
		cfg.Brokers = o.brokers
	}
	if o.policyPath != "" {
		cfg.Policy = o.policyPath
	}
	level := new(slog.LevelVar)
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})).With("component", "audit")

	dialer, err := cfg.Dialer(os.Environ())
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if o.learnFor > 0 {
		return learnPolicy(ctx, cfg, dialer, o.learnFor, o.writePolicy, log)
	}

	pol, err := loadPolicy(cfg.Policy, log)
	if err != nil {
		return err
	}
	proc, err := stream.New(cfg, dialer, pol, os.Stdout, log)
	if err != nil {
		return err
	}
	log.Info("policy loaded", "file", cfg.Policy, "rules", len(pol.Rules))
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				p, err := loadPolicy(cfg.Policy, log)
				if err != nil {
					log.Error("policy reload refused; the old policy stays", "err", err)
					continue
				}
				proc.SetPolicy(p)
				log.Info("policy reloaded", "file", cfg.Policy, "rules", len(p.Rules))
			}
		}
	}()
	if cfg.MetricsListen != "" {
		l, err := metrics.Listen(cfg.MetricsListen)
		if err != nil {
			return err
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(proc.Metrics.Registry, promhttp.HandlerOpts{}))
		mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
			select {
			case <-proc.Ready():
			default:
				http.Error(w, "waiting for partitions", http.StatusServiceUnavailable)
				return
			}
			if err := proc.Healthy(); err != nil {
				http.Error(w, err.Error(), http.StatusServiceUnavailable)
				return
			}
			fmt.Fprintln(w, "ok")
		})
		go func() {
			if err := metrics.Serve(ctx, l, mux); err != nil {
				log.Error("metrics endpoint", "err", err)
			}
		}()
	}
	return proc.Run(ctx)
}

// loadPolicy reads and compiles the policy file, and logs its warnings.
func loadPolicy(path string, log *slog.Logger) (*policy.Policy, error) {
	pol, _, err := readPolicy(path)
	if err != nil {
		return nil, err
	}
	for _, w := range pol.Warnings {
		log.Warn("policy warning", "file", w.File, "line", w.Line, "key", w.Key, "problem", w.Problem)
	}
	return pol, nil
}

// readPolicy reads and compiles a policy file: the one parse the audit and
// bindwatch policy check share. The warnings come even with errors.
func readPolicy(path string) (*policy.Policy, []policy.Warning, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("policy: %w", err)
	}
	return policy.Check(path, b)
}

func learnPolicy(ctx context.Context, cfg *auditconfig.Config, dialer *kafka.Dialer, d time.Duration, out string, log *slog.Logger) error {
	l := learn.New(policy.DefaultEphemeral)
	n, err := stream.Learn(ctx, dialer, cfg, d, l)
	if err != nil {
		return err
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	header := fmt.Sprintf("Learned by bindwatch audit --learn %s from %s, %s: %d events, %d rules,\n"+
		"%d listeners left commented out (no executable, unit or image known).\n"+
		"Every rule allows what was seen; review each before use: a listener that\n"+
		"should not exist is allowed here too.", d, cfg.EventsTopic, time.Now().UTC().Format(time.RFC3339), n, l.Len(), l.Unknown())
	if err := l.Write(f, header); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	log.Info("policy written", "file", out, "rules", l.Len(), "commented_out", l.Unknown(), "events", n)
	return nil
}
