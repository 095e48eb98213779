package bpf

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bindwatch/bindwatch/test/testenv"
)

func pinNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// TestUnpinIfOrphaned: the orphan unpin leaves a running agent's pins
// alone, and an exited agent's while its lease runs; once the lease has
// expired it removes every pin and keeps the directory.
func TestUnpinIfOrphaned(t *testing.T) {
	testenv.RequireRoot(t)
	mustBPFFS(t)
	dir := filepath.Join("/sys/fs/bpf", fmt.Sprintf("bindwatch-orphan-test-%d", os.Getpid()))
	t.Cleanup(func() { RemovePins(dir) })
	const lease = 2 * time.Second
	opts := Options{Filter: Filter{PID: uint32(os.Getpid())}, PinDir: dir, OrphanTimeout: lease}
	agent, err := Load(opts)
	if err != nil {
		t.Fatal(err)
	}
	pinned := pinNames(t, dir)

	// A running agent whose lease has run out (stalled, or its renewals
	// failing) is still running: its lock protects it.
	if err := agent.coll.Maps["lease"].Put(uint32(0), uint64(1)); err != nil {
		t.Fatal(err)
	}
	v, err := UnpinIfOrphaned(dir)
	if err != nil {
		t.Fatal(err)
	}
	if v.Unpinned || !strings.Contains(v.Reason, "agent is running") {
		t.Fatalf("with an agent running: %+v, want a refusal naming the running agent", v)
	}
	if err := agent.RenewLease(); err != nil {
		t.Fatal(err)
	}
	agent.Close()

	v, err = UnpinIfOrphaned(dir)
	if err != nil {
		t.Fatal(err)
	}
	if v.Unpinned || v.Remaining <= 0 || v.Remaining > lease {
		t.Fatalf("within the lease: %+v, want a refusal with up to %v remaining", v, lease)
	}
	if got := pinNames(t, dir); strings.Join(got, " ") != strings.Join(pinned, " ") {
		t.Fatalf("refusals changed the pins: %v, were %v", got, pinned)
	}

	time.Sleep(lease + 300*time.Millisecond)
	v, err = UnpinIfOrphaned(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !v.Unpinned || v.Expired < 300*time.Millisecond || v.Pins != len(pinned) {
		t.Fatalf("after the lease: %+v, want the %d pins removed", v, len(pinned))
	}
	if got := pinNames(t, dir); len(got) != 0 {
		t.Fatalf("after the orphan unpin %s holds %v", dir, got)
	}
	v, err = UnpinIfOrphaned(dir)
	if err != nil || v.Unpinned || v.Reason != "nothing is pinned" {
		t.Fatalf("again on the empty directory: %+v, %v", v, err)
	}

	// Without a lease capture goes on until unpinned by hand.
	opts.OrphanTimeout = 0
	agent, err = Load(opts)
	if err != nil {
		t.Fatal(err)
	}
	agent.Close()
	v, err = UnpinIfOrphaned(dir)
	if err != nil || v.Unpinned || !strings.Contains(v.Reason, "no lease") {
		t.Fatalf("with orphan_timeout 0: %+v, %v, want a refusal", v, err)
	}
}

// TestUnpinRaceWithStartingAgent starts an agent at the worst moment: the
// orphan unpin has read an expired lease and is about to remove the pins.
// The agent must wait for it and then pin a fresh capture of its own,
// rather than take over the old maps and lose them to the unpin (which
// would leave it running with nothing pinned: its next restart would lose
// every bind made meanwhile).
func TestUnpinRaceWithStartingAgent(t *testing.T) {
	testenv.RequireRoot(t)
	mustBPFFS(t)
	dir := filepath.Join("/sys/fs/bpf", fmt.Sprintf("bindwatch-orphan-race-%d", os.Getpid()))
	t.Cleanup(func() { RemovePins(dir) })
	const lease = time.Second
	opts := Options{Filter: Filter{PID: uint32(os.Getpid())}, PinDir: dir, OrphanTimeout: lease}
	first, err := Load(opts)
	if err != nil {
		t.Fatal(err)
	}
	first.Close()
	time.Sleep(lease + 200*time.Millisecond)

	type loaded struct {
		p   *Probe
		err error
	}
	started := make(chan loaded, 1)
	var waited bool
	afterOrphanCheck = func() {
		go func() {
			p, err := Load(opts)
			started <- loaded{p, err}
		}()
		select {
		case l := <-started:
			started <- l
		case <-time.After(time.Second):
			waited = true
		}
	}
	t.Cleanup(func() { afterOrphanCheck = nil })
	v, err := UnpinIfOrphaned(dir)
	afterOrphanCheck = nil
	if err != nil {
		t.Fatal(err)
	}
	if !v.Unpinned {
		t.Fatalf("the lease had expired: %+v", v)
	}
	l := <-started
	if l.err != nil {
		t.Fatal(l.err)
	}
	defer l.p.Close()
	if !waited {
		t.Errorf("the agent finished loading while the unpin held the pin directory")
	}
	if l.p.Generation() != 1 || l.p.Orphaned() != 0 {
		t.Errorf("the agent took over the unpinned capture (generation %d, orphaned %v), want a fresh one", l.p.Generation(), l.p.Orphaned())
	}
	names := strings.Join(pinNames(t, dir), " ")
	for _, want := range []string{"map_events", "map_seq_counter", "map_lease", "link_1_0"} {
		if !strings.Contains(names, want) {
			t.Errorf("the started agent's %s is not pinned: %s holds %s", want, dir, names)
		}
	}
	before := must(l.p.NextSeq())
	bindN(t, 2)
	if n := must(l.p.NextSeq()); n != before+2 {
		t.Errorf("the started agent reported %d of 2 binds", n-before)
	}
}
