package state

import (
	"testing"
	"time"
)

// Hosts expire after audit.host_expiry without a record, stopped or not;
// a host timed from nothing is timed from now.
func TestExpire(t *testing.T) {
	tb := New()
	now := time.Unix(1_000_000, 0)
	const after = 24 * time.Hour
	for _, c := range []struct {
		id   string
		seen time.Time
		kind string
	}{
		{"fresh", now.Add(-time.Hour), KindHeartbeat},
		{"edge", now.Add(-after), KindHeartbeat},
		{"gone", now.Add(-after - time.Second), KindHeartbeat},
		{"stopped", now.Add(-2 * after), KindStop},
		{"unknown", time.Time{}, KindHeartbeat},
		{"listening", now.Add(-3 * after), KindListen},
	} {
		tb.Apply(&Event{Kind: c.kind, HostID: c.id, BootID: "b", Seq: 1, Protocol: "TCP", Addr: "0.0.0.0", Port: 80, Cookie: 1, NetNS: 1})
		tb.Apply(&Event{Kind: KindListen, HostID: c.id, BootID: "b", Seq: 2, Protocol: "TCP", Addr: "0.0.0.0", Port: 81, Cookie: 2, NetNS: 1})
		tb.Hosts[c.id].LastSeen = c.seen
	}
	tb.Note(&Event{Kind: KindSeal, HostID: "gone", BootID: "b2", Seq: 9})
	gone := tb.Expire(now, after)
	var ids []string
	for _, h := range gone {
		ids = append(ids, h.HostID)
		if len(h.Listeners) == 0 {
			t.Errorf("%s came back without its listeners", h.HostID)
		}
	}
	if got := []string{"gone", "listening", "stopped"}; len(ids) != 3 || ids[0] != got[0] || ids[1] != got[1] || ids[2] != got[2] {
		t.Fatalf("expired %v, want %v", ids, got)
	}
	if len(tb.Hosts) != 3 || tb.Hosts["unknown"].LastSeen != now || len(tb.early) != 0 {
		t.Fatalf("kept %d hosts; unknown last seen %v; early %v", len(tb.Hosts), tb.Hosts["unknown"].LastSeen, tb.early)
	}
	if ls := gone[1].Sorted(); len(ls) != 2 || ls[0].Key.Cookie != 2 && ls[0].Key.Cookie != 1 {
		t.Fatalf("sorted: %v", ls)
	}
	// A host that sends after expiry starts a new table entry.
	if res := tb.Apply(&Event{Kind: KindHeartbeat, HostID: "gone", BootID: "b", Seq: 3}); res.Skipped || tb.Hosts["gone"] == gone[0] || tb.Hosts["gone"].LastSeq != 3 {
		t.Fatalf("back after expiry: %+v", res)
	}
	if tb.Expire(now, 0) != nil {
		t.Fatal("a zero expiry expires")
	}
}
