package main

import (
	"math"
	"os"
	"runtime/debug"
	"testing"

	"github.com/bindwatch/bindwatch/internal/config"
)

// TestAgentGC: the agent runs its collector at agentGCPercent and under
// memoryLimit, unless the operator set GOGC or GOMEMLIMIT, which win.
func TestAgentGC(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(math.MaxInt64))
	defaults := config.Defaults().Pipeline
	for _, env := range []string{"GOGC", "GOMEMLIMIT"} {
		t.Setenv(env, "") // restored after the test, whatever it was
		os.Unsetenv(env)
	}
	setAgentGC(defaults)
	if got := debug.SetGCPercent(100); got != agentGCPercent {
		t.Fatalf("without GOGC the agent's GC percent is %d, want %d", got, agentGCPercent)
	}
	if got := debug.SetMemoryLimit(math.MaxInt64); got != agentMemoryLimit {
		t.Fatalf("without GOMEMLIMIT the agent's memory limit is %d, want %d", got, agentMemoryLimit)
	}

	t.Setenv("GOGC", "200")
	t.Setenv("GOMEMLIMIT", "1GiB")
	setAgentGC(defaults)
	if got := debug.SetGCPercent(100); got != 100 {
		t.Fatalf("with GOGC set the agent changed the GC percent to %d", got)
	}
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Fatalf("with GOMEMLIMIT set the agent changed the memory limit to %d", got)
	}
}

// TestMemoryLimitFollowsThePipeline: a queue or batches configured larger
// than their defaults raise the limit in proportion; smaller never lower it.
func TestMemoryLimitFollowsThePipeline(t *testing.T) {
	d := config.Defaults().Pipeline
	for _, tt := range []struct {
		name        string
		queue, size int
		want        int64
	}{
		{"defaults", d.QueueSize, d.BatchSize, agentMemoryLimit},
		{"smaller", d.QueueSize / 4, 1, agentMemoryLimit},
		{"queue x8", d.QueueSize * 8, d.BatchSize, 8 * agentMemoryLimit},
		{"batches x10, queue x2", d.QueueSize * 2, d.BatchSize * 10, 10 * agentMemoryLimit},
	} {
		p := d
		p.QueueSize, p.BatchSize = tt.queue, tt.size
		if got := memoryLimit(p); got != tt.want {
			t.Errorf("%s: memory limit %d, want %d", tt.name, got, tt.want)
		}
	}
}
