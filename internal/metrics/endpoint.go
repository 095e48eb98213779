package metrics

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bindwatch/bindwatch/internal/config"
	"github.com/bindwatch/bindwatch/internal/sdnotify"
)

// Endpoint serves the handler on metrics.listen, and keeps trying to.
//
// It never stops the agent: any user can take a TCP port first, and if a
// taken port failed the start, systemd's restarts would use up the unit's
// start limit and leave capture off, which is what such a user wants. So a
// listener that cannot be had is logged, counted in
// bindwatch_metrics_listen_errors_total and shown by
// bindwatch_metrics_listening 0, and tried again with backoff while capture
// runs. A unix socket (unix:/path, mode 0660) or a socket systemd bound
// (systemd) cannot be taken by another user at all.
type Endpoint struct {
	addr    string
	handler http.Handler
	log     *slog.Logger
	// MinBackoff and MaxBackoff bound the wait between attempts.
	MinBackoff, MaxBackoff time.Duration

	listening prometheus.Gauge
	errors    prometheus.Counter
	// first is the listener Start got, for Run to serve first.
	first net.Listener
}

// NewEndpoint registers the endpoint's own series in m and returns an
// Endpoint for addr (a metrics.listen value, not empty).
func (m *Metrics) NewEndpoint(addr string, h *Health, log *slog.Logger) *Endpoint {
	e := &Endpoint{
		addr: addr, handler: m.Handler(h), log: log.With("component", "metrics", "listen", addr),
		MinBackoff: 500 * time.Millisecond, MaxBackoff: 30 * time.Second,
		listening: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "bindwatch_metrics_listening",
			Help: "1 while the metrics endpoint has its listener, 0 while it tries to get one.",
		}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "bindwatch_metrics_listen_errors_total",
			Help: "Failed attempts to listen on metrics.listen (a taken port, a missing socket).",
		}),
	}
	m.Registry.MustRegister(e.listening, e.errors)
	return e
}

// Open tries once to listen, so that in the usual case the endpoint is up
// by the time the agent reports ready. A failure is logged and counted,
// never returned: Run keeps trying.
func (e *Endpoint) Open() {
	l, err := e.listen()
	if err != nil {
		e.errors.Inc()
		e.log.Error("metrics endpoint cannot listen; capture goes on, retrying in the background", "err", err)
		return
	}
	e.first = l
	e.listening.Set(1)
	e.log.Info("metrics endpoint listening", "addr", l.Addr().String())
}

// Close releases the listener Open got, if Run has not taken it.
func (e *Endpoint) Close() {
	if e.first != nil {
		e.first.Close()
		e.first = nil
	}
}

// Run listens and serves until ctx is done, retrying with backoff whenever
// it has no listener. It returns nil when ctx is done.
func (e *Endpoint) Run(ctx context.Context) error {
	backoff := e.MinBackoff
	for {
		l, err := e.first, error(nil)
		e.first = nil
		fresh := l == nil
		if fresh {
			l, err = e.listen()
		}
		if err != nil {
			e.errors.Inc()
			e.log.Error("metrics endpoint cannot listen; capture goes on, retrying", "err", err, "retry_in", backoff)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, e.MaxBackoff)
			continue
		}
		backoff = e.MinBackoff
		e.listening.Set(1)
		if fresh {
			e.log.Info("metrics endpoint listening", "addr", l.Addr().String())
		}
		err = Serve(ctx, l, e.handler)
		e.listening.Set(0)
		if ctx.Err() != nil {
			return nil
		}
		e.errors.Inc()
		e.log.Error("metrics endpoint stopped serving; retrying", "err", err)
	}
}

// listen makes the listener metrics.listen names.
func (e *Endpoint) listen() (net.Listener, error) {
	switch {
	case e.addr == config.MetricsSystemd:
		ls, err := sdnotify.Listeners()
		if err != nil {
			return nil, err
		}
		for _, extra := range ls[1:] {
			extra.Close()
		}
		return ls[0], nil
	case strings.HasPrefix(e.addr, config.MetricsUnixPrefix):
		return listenUnix(strings.TrimPrefix(e.addr, config.MetricsUnixPrefix))
	}
	return Listen(e.addr)
}

// listenUnix binds a unix socket at path, mode 0660, replacing a stale
// socket (an earlier agent's) but nothing else.
func listenUnix(path string) (net.Listener, error) {
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != fs.ModeSocket {
			return nil, fmt.Errorf("metrics.listen %s: exists and is not a socket", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("metrics.listen %s: removing the stale socket: %w", path, err)
		}
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("metrics.listen %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o660); err != nil {
		l.Close()
		return nil, fmt.Errorf("metrics.listen %s: %w", path, err)
	}
	return l, nil
}
