package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/pflag"

	"github.com/bindwatch/bindwatch/internal/config"
	"github.com/bindwatch/bindwatch/pipeline"
)

func runAgent(args []string) error {
	fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
	path := fs.String("config", "", "YAML configuration file (see configs/bindwatch.yaml)")
	config.RegisterFlags(fs)
	fs.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: bindwatch run --config FILE [--KEY VALUE ...]\n\n"+
			"The agent: captures binds, enriches them, encodes them as Avro and publishes\n"+
			"them to Kafka. Settings come from defaults < the file < BINDWATCH_* variables\n"+
			"< these flags.\n\n%s", fs.FlagUsages())
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := config.Load(*path, os.Environ(), fs)
	if err != nil {
		return err
	}
	log := newLogger(os.Stderr, cfg.Log)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	agent, err := pipeline.Start(ctx, cfg, log)
	if err != nil {
		return err
	}
	runErr := agent.Run(ctx)
	// Run has drained every stage; Close only waits for the writer.
	closeCtx, cancel := context.WithTimeout(context.Background(), cfg.Shutdown.Timeout)
	defer cancel()
	closeErr := agent.Close(closeCtx)
	s := agent.Stats()
	log.Info("bindwatch agent stopped", "component", "agent",
		"captured", s.Capture.Read.Load(), "queue_full", s.Capture.QueueFull.Load(),
		"published", s.Publish.Published.Load(), "lost", s.Publish.Lost.Load(), "rejected", s.Publish.Rejected.Load())
	return errors.Join(runErr, closeErr)
}

// newLogger builds the agent's logger from log.level and log.format.
func newLogger(w io.Writer, c config.Log) *slog.Logger {
	opts := &slog.HandlerOptions{Level: c.SlogLevel()}
	if c.Format == config.LogText {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}
