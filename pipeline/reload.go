package pipeline

import (
	"fmt"

	"github.com/bindwatch/bindwatch/internal/config"
)

// Reload applies what can change live of next, an already validated
// configuration (the keys marked live in internal/config's table), and
// returns the changed keys it could not apply; those keep their running
// values until a restart. The log level belongs to the caller, who owns
// the logger.
func (a *Agent) Reload(next *config.Config) (ignored []string, err error) {
	applied, ignored := config.ApplyLive(a.current(), next)
	// From applied, not next: the filter carries capture.uid_budget too,
	// which is not live and must keep its running value, as reported.
	if err := a.probe.SetFilter(captureFilter(applied)); err != nil {
		return nil, fmt.Errorf("applying the capture filters: %w", err)
	}
	a.limits.Set(applied.Pipeline.BatchSize, applied.Pipeline.BatchTimeout)
	a.cfg.Store(applied)
	return ignored, nil
}
