package main

import (
	"os"
	"runtime/debug"

	"github.com/bindwatch/bindwatch/internal/config"
)

// agentGCPercent is the agent's garbage-collection target. Its live heap
// is small and bounded (6-9 MiB at a storm's peak, most of it queues
// sized by configuration), so the default 100 mostly holds garbage: under
// 10 s UDP bind storms (test/overhead.sh 0 1 10, alternated) 50 peaked at
// 48.5 and 43.4 MiB resident against 52.2 and 52.1, anonymous memory 20.2
// and 16.1 MiB against 24.7 and 25.1, with nothing lost at 72k binds/s.
const agentGCPercent = 50

// agentMemoryLimit is the agent's soft memory limit at the default
// pipeline sizes: what the Go runtime holds (heap, stacks, its metadata),
// not the executable's pages. The live heap at a storm's peak is about
// 6 MiB, but between collections the runtime kept up to 16-22 MiB of
// anonymous memory, and storm peaks reached 40.6 MiB resident. Alternated
// storms (test/overhead.sh 0 1 10, 50-73k binds/s, none lost) peaked at
// 35.1, 32.0 and 35.7 MiB with 18 MiB against 38.4, 36.3 and 37.9 without;
// 16 MiB lost events in one storm of two as the collector ran harder. It
// is soft: with more live heap than this the collector runs more often, at
// most half the CPU, and memory still grows. The inventory pass of a host
// with many listeners pays for it: 10 000 listeners took 230 ms instead of
// 113 (BenchmarkInventory10k, GOMEMLIMIT=18MiB against none, twice each),
// once per inventory.interval.
const agentMemoryLimit = 18 << 20

// memoryLimit is agentMemoryLimit grown in proportion with the pipeline's
// queue and batches when they are configured larger than their defaults.
func memoryLimit(p config.Pipeline) int64 {
	d := config.Defaults().Pipeline
	scale := max(1, float64(p.QueueSize)/float64(d.QueueSize), float64(p.BatchSize)/float64(d.BatchSize))
	return int64(scale * agentMemoryLimit)
}

// setAgentGC applies agentGCPercent and memoryLimit unless the operator set
// GOGC or GOMEMLIMIT, which keep their usual meaning.
func setAgentGC(p config.Pipeline) {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(agentGCPercent)
	}
	if _, set := os.LookupEnv("GOMEMLIMIT"); !set {
		debug.SetMemoryLimit(memoryLimit(p))
	}
}
