package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/bindwatch/bindwatch/internal/config"
	"github.com/bindwatch/bindwatch/internal/dacread"
	"github.com/bindwatch/bindwatch/internal/sdnotify"
	"github.com/bindwatch/bindwatch/pipeline"
)

// exitConfig is the exit status for a configuration refused at start:
// EX_CONFIG, which the unit lists in RestartPreventExitStatus, because
// restarting cannot fix a bad file.
const exitConfig = 78

func runCommand() *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "run --config FILE [--KEY VALUE ...]",
		Short: "the agent: publish binds to Kafka as Avro (systemd runs this)",
		Long: "The agent: captures binds, enriches them, encodes them as Avro and publishes\n" +
			"them to Kafka. Settings come from defaults < the file < BINDWATCH_* variables\n" +
			"< these flags. SIGHUP reloads the file; SIGINT or SIGTERM stop.",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runAgent(path, cmd.Flags()) },
	}
	cmd.Flags().StringVar(&path, "config", "", "YAML configuration file (see configs/bindwatch.yaml)")
	config.RegisterFlags(cmd.Flags())
	return cmd
}

func runAgent(path string, fs *pflag.FlagSet) error {
	// SIGHUP's default action ends the process, and a reload may be asked
	// for at any moment (systemctl reload during start-up): it is caught
	// from the first moment, and one asked for while starting is applied
	// once the agent runs.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	// Before anything reads a file: CAP_DAC_READ_SEARCH, which the unit
	// grants for the container runtimes' state, is effective from here on
	// only while internal/dacread opens a file beneath their roots.
	dacHeld, dacErr := dacread.Confine()
	cfg, err := config.Load(path, os.Environ(), fs)
	if err != nil {
		return &exitError{code: exitConfig, err: err}
	}
	level := new(slog.LevelVar)
	level.Set(cfg.Log.SlogLevel())
	log := newLogger(os.Stderr, cfg.Log.Format, level)
	notify := sdnotify.FromEnvironment()
	switch {
	case dacErr != nil:
		log.Warn("confining CAP_DAC_READ_SEARCH", "component", "agent", "error", dacErr)
	case dacHeld:
		log.Info("CAP_DAC_READ_SEARCH held permitted, not effective: raised only to open container runtimes' state",
			"component", "agent", "roots", []string{cfg.Workload.DockerRoot, cfg.Workload.ContainerdState,
				cfg.Workload.StorageRoot, cfg.Workload.StorageRunRoot})
	}
	pipeline.Version = version
	setAgentGC(cfg.Pipeline)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	agent, err := pipeline.Start(ctx, cfg, log)
	if err != nil {
		return err
	}
	status := fmt.Sprintf("capturing with %s, publishing to %s", agent.Probe().Hook(), cfg.Kafka.Topic)
	if err := notify.Ready(status); err != nil {
		log.Warn("telling systemd the agent is ready", "component", "agent", "error", err)
	}
	go notify.KeepAlive(ctx, agent.Alive, log)
	go reloadOnHUP(ctx, hup, path, fs, agent, level, notify, status, log)

	runErr := agent.Run(ctx)
	notify.Stopping()
	// Run has drained every stage; Close only waits for the writer.
	closeCtx, cancel := context.WithTimeout(context.Background(), cfg.Shutdown.Timeout)
	defer cancel()
	closeErr := agent.Close(closeCtx)
	s := agent.Stats()
	log.Info("bindwatch agent stopped", "component", "agent",
		"captured", s.Capture.Read.Load(), "queue_waits", s.Capture.Waited.Load(),
		"published", s.Publish.Published.Load(), "spooled", s.Publish.Spooled.Load(),
		"lost", s.Publish.Lost.Load(), "rejected", s.Publish.Rejected.Load())
	return errors.Join(runErr, closeErr)
}

// reloadOnHUP re-reads the configuration on each SIGHUP. A configuration
// that does not load is refused and the agent runs on unchanged; a good one
// is applied where it can change live, and the log names the keys that
// need a restart.
func reloadOnHUP(ctx context.Context, hup <-chan os.Signal, path string, fs *pflag.FlagSet, agent *pipeline.Agent,
	level *slog.LevelVar, notify *sdnotify.Notifier, status string, log *slog.Logger) {
	log = log.With("component", "agent")
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
		}
		notify.Reloading()
		next, err := config.Load(path, os.Environ(), fs)
		if err != nil {
			log.Error("configuration reload refused; running on with the previous one", "error", err)
			notify.Ready(status + "; last reload refused: " + firstLine(err.Error()))
			continue
		}
		ignored, err := agent.Reload(next)
		if err != nil {
			log.Error("configuration reload failed; running on with the previous one", "error", err)
			notify.Ready(status + "; last reload failed")
			continue
		}
		level.Set(next.Log.SlogLevel())
		setAgentGC(next.Pipeline)
		if len(ignored) > 0 {
			log.Warn("configuration reloaded; these keys changed but need a restart", "keys", ignored)
		} else {
			log.Info("configuration reloaded")
		}
		notify.Ready(status)
	}
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// newLogger builds the agent's logger: JSON or text, at a level a reload
// may change.
func newLogger(w io.Writer, format string, level slog.Leveler) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == config.LogText {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}
