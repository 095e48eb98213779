package config

import (
	"slices"
	"testing"
	"time"
)

func TestChanged(t *testing.T) {
	a, b := Defaults(), Defaults()
	if got := Changed(&a, &b); len(got) != 0 {
		t.Fatalf("identical configs differ in %v", got)
	}
	b.Capture.Ports = []uint16{80}
	b.Pipeline.BatchTimeout = time.Second
	b.Log.Level = LogDebug
	b.Kafka.Brokers = []string{"k:9092"}
	want := []string{"capture.ports", "kafka.brokers", "pipeline.batch_timeout", "log.level"}
	if got := Changed(&a, &b); !slices.Equal(got, want) {
		t.Fatalf("Changed = %v, want %v", got, want)
	}
}
