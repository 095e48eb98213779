package publish

import (
	"strings"
	"testing"

	"github.com/bindwatch/bindwatch/test/testenv"
)

// TestNoKafkaImport keeps the stage independent of any one output: it
// works against Sink, and kafka-go belongs to internal/kafkasink.
func TestNoKafkaImport(t *testing.T) {
	for _, dep := range testenv.Deps(t, ".") {
		if strings.HasPrefix(dep, "github.com/segmentio/kafka-go") || dep == "github.com/bindwatch/bindwatch/internal/kafkasink" {
			t.Errorf("pipeline/publish depends on %s", dep)
		}
	}
}
