package metrics

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
)

// Health is what /healthz and /readyz answer: the agent is healthy when no
// check has an error, ready once it has started and until it stops.
type Health struct {
	mu     sync.Mutex
	ready  bool
	checks map[string]error
}

// NewHealth returns a Health with the named checks, each failing with
// "not started" until Set clears it.
func NewHealth(names ...string) *Health {
	h := &Health{checks: map[string]error{}}
	for _, n := range names {
		h.checks[n] = fmt.Errorf("not started")
	}
	return h
}

// Set records the outcome of a check; nil means it passes.
func (h *Health) Set(name string, err error) {
	h.mu.Lock()
	h.checks[name] = err
	h.mu.Unlock()
}

// SetReady marks the agent ready (started) or not (stopping).
func (h *Health) SetReady(ready bool) {
	h.mu.Lock()
	h.ready = ready
	h.mu.Unlock()
}

// Problems lists the failing checks as "name: error", sorted.
func (h *Health) Problems() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for name, err := range h.checks {
		if err != nil {
			out = append(out, name+": "+err.Error())
		}
	}
	sort.Strings(out)
	return out
}

func (h *Health) serveHealth(w http.ResponseWriter, _ *http.Request) {
	if p := h.Problems(); len(p) > 0 {
		http.Error(w, strings.Join(p, "\n"), http.StatusServiceUnavailable)
		return
	}
	fmt.Fprintln(w, "ok")
}

func (h *Health) serveReady(w http.ResponseWriter, _ *http.Request) {
	h.mu.Lock()
	ready := h.ready
	h.mu.Unlock()
	if !ready {
		http.Error(w, "not ready", http.StatusServiceUnavailable)
		return
	}
	fmt.Fprintln(w, "ready")
}
