package pipeline

import (
	"fmt"
	"slices"

	"github.com/bindwatch/bindwatch/internal/config"
)

// liveKeys can change while the agent runs; the others need a restart
// (they shape connections, files and kernel objects opened at start).
var liveKeys = []string{
	"capture.errors", "capture.pid", "capture.uid", "capture.ports",
	"pipeline.batch_size", "pipeline.batch_timeout",
	"log.level",
}

// Reload applies what can change live of next, an already validated
// configuration, and returns the changed keys it could not apply; those
// keep their running values until a restart. The log level belongs to the
// caller, who owns the logger.
func (a *Agent) Reload(next *config.Config) (ignored []string, err error) {
	running := a.current()
	changed := config.Changed(running, next)
	for _, k := range changed {
		if !slices.Contains(liveKeys, k) {
			ignored = append(ignored, k)
		}
	}
	if err := a.probe.SetFilter(captureFilter(next)); err != nil {
		return nil, fmt.Errorf("applying the capture filters: %w", err)
	}
	a.limits.Set(next.Pipeline.BatchSize, next.Pipeline.BatchTimeout)
	// Keep the running values of what was not applied, so the next reload
	// compares against what really runs.
	applied := *running
	applied.Capture.Errors, applied.Capture.PID, applied.Capture.UID, applied.Capture.Ports =
		next.Capture.Errors, next.Capture.PID, next.Capture.UID, next.Capture.Ports
	applied.Pipeline.BatchSize, applied.Pipeline.BatchTimeout = next.Pipeline.BatchSize, next.Pipeline.BatchTimeout
	applied.Log.Level = next.Log.Level
	a.cfg.Store(&applied)
	return ignored, nil
}
