package policy

import (
	"slices"
	"testing"

	"github.com/bindwatch/bindwatch/pipeline/enrich"
)

// The container key's runtimes are the ones the agent reports: a rule on
// a runtime spelled otherwise would match nothing.
func TestRuntimesAreTheAgents(t *testing.T) {
	agent := []string{enrich.RuntimeDocker, enrich.RuntimeContainerd, enrich.RuntimeCRIO, enrich.RuntimePodman, enrich.RuntimePodmanRootless}
	if !slices.Equal(runtimes, agent) {
		t.Errorf("policy runtimes %v, the agent's %v", runtimes, agent)
	}
}
