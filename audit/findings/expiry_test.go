package findings

import (
	"strings"
	"testing"
	"time"

	"github.com/bindwatch/bindwatch/audit/state"
)

// A host that expires has every open finding resolved, saying so, and the
// tracker keeps nothing of it: when it sends again it starts fresh.
func TestExpiredHostResolvesEverything(t *testing.T) {
	r := newRun(t)
	r.cov(state.Event{Kind: state.KindHeartbeat, HeartbeatInterval: time.Second})
	r.do(state.KindSnapshot, "/usr/bin/nc", 4444, 7) // unallowed: a listener finding
	r.do(state.KindSnapshotEnd, "", 0, 0)            // complete, no sshd: a require finding
	r.tr.Integrity("id1", "h1", "b1", "unsigned", "does not seal", r.seq, time.Unix(1000, 0), nil)
	h := r.tb.Hosts["id1"]
	h.LastSeen = time.Unix(2000, 0)
	if got := r.tr.Silent(r.tb, time.Unix(2010, 0)); reasons(got) != "open:silent" {
		t.Fatalf("silent: %+v", got)
	}
	if n := r.tr.OpenCount(); n != 4 {
		t.Fatalf("%d findings open before expiry, want listener, require, integrity and silent", n)
	}

	const after = 168 * time.Hour
	if gone := r.tb.Expire(h.LastSeen.Add(after), after); len(gone) != 0 {
		t.Fatalf("expired at exactly audit.host_expiry: %v", gone)
	}
	at := h.LastSeen.Add(after + time.Second)
	gone := r.tb.Expire(at, after)
	if len(gone) != 1 || gone[0] != h || r.tb.Hosts["id1"] != nil {
		t.Fatalf("expired %v; table %v", gone, r.tb.Hosts)
	}
	out := r.tr.Expire(gone, at, after, nil)
	kinds := map[string]bool{}
	for _, f := range out {
		kinds[f.Kind] = true
		want := "host expired: no record since 1970-01-01T00:33:20Z (audit.host_expiry 168h0m0s)"
		if f.State != Resolved || !strings.HasSuffix(f.Detail, "Resolved: "+want) || !f.Time.Equal(at) || f.Seq != h.LastSeq || f.BootID != "b1" {
			t.Errorf("%s finding: %+v", f.Kind, f)
		}
	}
	if len(out) != 4 || len(kinds) != 4 {
		t.Fatalf("resolved %s, want one of each kind", states(out))
	}
	if n := r.tr.OpenCount(); n != 0 || len(r.tr.wants) != 0 || len(r.tr.unallowed) != 0 || len(r.tr.coverageOf) != 0 || len(r.tr.emitted) != 0 {
		t.Fatalf("left after expiry: %d open, wants %v, unallowed %v, coverage %v, emitted %v", n, r.tr.wants, r.tr.unallowed, r.tr.coverageOf, r.tr.emitted)
	}
	for kind, n := range r.tr.OpenByKind() {
		if n != 0 {
			t.Errorf("%d %s findings counted open", n, kind)
		}
	}

	// Back, same boot, later seq: a new host; its listener opens a finding again.
	if got := r.do(state.KindListen, "/usr/bin/nc", 4444, 7); states(got) != "open " {
		t.Fatalf("the host back after expiry: %s", states(got))
	}
	if h2 := r.tb.Hosts["id1"]; h2 == h || h2.Complete || len(h2.Listeners) != 1 {
		t.Fatalf("the host back is not fresh: %+v", h2)
	}
}
