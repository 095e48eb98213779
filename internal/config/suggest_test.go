package config

import "testing"

func TestEditDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"kafka", "kafka", 0},
		{"kafak", "kafka", 1}, // swap of neighbours
		{"kafka.tls.cafile", "kafka.tls.ca_file", 1},
		{"log.lvl", "log.level", 2},
		{"abc", "", 3},
		{"spool", "metrics", 7},
	} {
		if got := editDistance(tc.a, tc.b); got != tc.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
		if got := editDistance(tc.b, tc.a); got != tc.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tc.b, tc.a, got, tc.want)
		}
	}
}

func TestSuggest(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"kafka.tls.cafile", `"kafka.tls.ca_file"`},
		{"capture.port", `"capture.ports"`},
		{"spool.maxbytes", `"spool.max_bytes"`},
		{"log.lvl", `"log.level"`},
		{"kafak", `"kafka"`},
		{"tls", `"kafka.tls"`},                        // right name, wrong place
		{"kafka.batch_size", `"pipeline.batch_size"`}, // right name, wrong section
		{"spool.batch_timeout", `"kafka.batch_timeout" or "pipeline.batch_timeout"`},
		{"kafka.partitions", ""},
		{"x", ""},
	} {
		if got := suggest(tc.in); got != tc.want {
			t.Errorf("suggest(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}
