package gaps

import (
	"slices"
	"testing"
)

func TestReports(t *testing.T) {
	tr := NewTracker()
	// Host a, boot 1: 0..9 with 3 and 6-7 missing, 5 twice, out of order.
	for _, s := range []uint64{9, 0, 1, 2, 4, 5, 5, 8} {
		tr.Add("web-1", "a", "1", s)
	}
	// Host a, boot 2: complete.
	for s := range uint64(4) {
		tr.Add("web-1", "a", "2", s)
	}
	// Host b: a counter restart (seeded from the boot clock) is not a gap.
	for _, s := range []uint64{0, 1, 2, 5_000_000_000, 5_000_000_001, 5_000_000_003} {
		tr.Add("db-1", "b", "1", s)
	}
	got := tr.Reports()
	want := []string{
		"host web-1 host_id a boot_id 1: 7 events, seq 0..9, 1 duplicates, 3 missing: 3, 6-7",
		"host web-1 host_id a boot_id 2: 4 events, seq 0..3, none missing",
		"host db-1 host_id b boot_id 1: 6 events, seq 0..5000000003, counter restarted after 2 at 5000000000, 1 missing: 5000000002",
	}
	var lines []string
	for _, r := range got {
		lines = append(lines, r.String())
	}
	if !slices.Equal(lines, want) {
		t.Fatalf("reports:\n%q\nwant\n%q", lines, want)
	}
	if got[0].MissingCount() != 3 || got[1].MissingCount() != 0 {
		t.Fatalf("missing counts %d, %d", got[0].MissingCount(), got[1].MissingCount())
	}
}
