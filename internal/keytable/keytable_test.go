package keytable

import (
	"slices"
	"testing"
)

func TestTable(t *testing.T) {
	names := []string{"capture.hook", "kafka.brokers", "kafka.tls.enabled", "kafka.tls.ca_file", "kafka.acks", "log.level"}
	if got, want := Sections(names), []string{"capture", "kafka", "kafka.tls", "log"}; !slices.Equal(got, want) {
		t.Errorf("Sections = %v, want %v", got, want)
	}
	for _, c := range []struct {
		section string
		want    []string
	}{
		{"", []string{"capture", "kafka", "log"}},
		{"kafka", []string{"brokers", "tls", "acks"}},
		{"kafka.tls", []string{"enabled", "ca_file"}},
		{"nope", nil},
	} {
		if got := Children(names, c.section); !slices.Equal(got, c.want) {
			t.Errorf("Children(%q) = %v, want %v", c.section, got, c.want)
		}
	}
	if !IsSection(names, "kafka.tls") || IsSection(names, "kafka.tl") || IsSection(names, "kafka.acks") {
		t.Error("IsSection")
	}
}
