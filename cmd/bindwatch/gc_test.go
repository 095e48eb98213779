package main

import (
	"os"
	"runtime/debug"
	"testing"
)

// TestAgentGC: the agent runs its collector at agentGCPercent, unless the
// operator set GOGC, which wins.
func TestAgentGC(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	t.Setenv("GOGC", "") // restored after the test, whatever it was
	os.Unsetenv("GOGC")
	setAgentGC()
	if got := debug.SetGCPercent(100); got != agentGCPercent {
		t.Fatalf("without GOGC the agent's GC percent is %d, want %d", got, agentGCPercent)
	}
	t.Setenv("GOGC", "200")
	setAgentGC()
	if got := debug.SetGCPercent(100); got != 100 {
		t.Fatalf("with GOGC set the agent changed the GC percent to %d", got)
	}
}
