package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/bindwatch/bindwatch/bpf"
	"github.com/bindwatch/bindwatch/schemas/codec"
	"github.com/bindwatch/bindwatch/test/kafkatest"
	"github.com/bindwatch/bindwatch/test/testenv"
)

// loadUID is the user the load generator binds as; the agent under test
// reports that user's binds only.
const loadUID = testenv.UserLoad

// TestAgentSIGKILLLosesNothing runs the agent as a process, kills it with
// SIGKILL in the middle of a steady bind load, and starts it again: the
// pinned ring buffer holds what was in flight and what happened while no
// agent ran, so every bind must reach Kafka.
func TestAgentSIGKILLLosesNothing(t *testing.T) {
	testenv.RequireRoot(t)
	const topic = "restart"
	cluster := kafkatest.Start(t, kafkatest.Options{Brokers: 3, Topic: topic, Partitions: 3})
	dir := t.TempDir()
	pinDir := fmt.Sprintf("/sys/fs/bpf/bindwatch-test-kill-%d", os.Getpid())
	t.Cleanup(func() { bpf.RemovePins(pinDir) })
	cfgPath := writeAgentConfig(t, dir, agentConfig{uid: loadUID, pinDir: pinDir, brokers: cluster.Addrs, topic: topic, spoolDir: filepath.Join(dir, "spool")})

	first := runAgentProcess(t, cfgPath)
	load := startLoad(t, 1000, 6*time.Second)
	time.Sleep(2 * time.Second)
	first.Kill(t)
	t.Log("agent killed with SIGKILL")
	time.Sleep(time.Second) // binds go on with no agent running
	second := runAgentProcess(t, cfgPath)
	t.Log("agent restarted")
	binds := load.Binds(t)

	// Everything is in once the topic holds at least one message per bind.
	testenv.Eventually(t, "a message per bind on the topic", 30*time.Second, func() error {
		if n := kafkatest.Count(t, cluster.Addrs, topic); n < int64(binds) {
			return fmt.Errorf("%d messages for %d binds", n, binds)
		}
		return nil
	})
	if err := second.Stop(t, syscall.SIGTERM); err != nil {
		t.Fatalf("agent after SIGTERM: %v", err)
	}

	n := int(kafkatest.Count(t, cluster.Addrs, topic))
	dec, err := codec.NewDecoder("")
	if err != nil {
		t.Fatal(err)
	}
	// Each agent start also lists what listens (none of the load user's):
	// a snapshot_end record, numbered in the same sequence.
	var seqs, bindSeqs []uint64
	for _, m := range kafkatest.ReadAll(t, cluster.Addrs, topic, n, 30*time.Second) {
		rec, err := dec.Decode(context.Background(), m.Value)
		if err != nil {
			t.Fatal(err)
		}
		var seq uint64
		var kind string
		for _, f := range rec.Fields {
			switch f.Name {
			case "seq":
				seq = uint64(f.Value.(int64))
			case "kind":
				kind = f.Value.(string)
			}
		}
		seqs = append(seqs, seq)
		if kind == "bind" {
			bindSeqs = append(bindSeqs, seq)
		}
	}
	slices.Sort(seqs)
	distinct := slices.Compact(slices.Clone(seqs))
	slices.Sort(bindSeqs)
	distinctBinds := slices.Compact(bindSeqs)
	t.Logf("%d binds, %d messages on the topic, %d distinct records, %d distinct binds, seq %d..%d",
		binds, len(seqs), len(distinct), len(distinctBinds), distinct[0], distinct[len(distinct)-1])
	if len(distinctBinds) != binds {
		t.Fatalf("%d distinct bind events for %d binds", len(distinctBinds), binds)
	}
	// No record is lost; what the killed agent numbered itself and had
	// not delivered is: the seals of the batches it had in flight (their
	// records are read again from the ring and sealed anew). Those are at
	// most the batches between its stages (4 batched, 4 encoded, 1 being
	// written, and one being made).
	if span := distinct[len(distinct)-1] - distinct[0] + 1; span != uint64(len(distinct)) {
		missing := span - uint64(len(distinct))
		if missing > 10 {
			t.Fatalf("sequence numbers span %d for %d distinct records: a gap of %d, more than the killed agent's seals in flight", span, len(distinct), missing)
		}
		t.Logf("%d seqs missing, every bind present: the killed agent's seals in flight", missing)
	}
}

// startLoad is test/loadgen binding as loadUID.
func startLoad(t *testing.T, rate int, d time.Duration) *testenv.Loadgen {
	t.Helper()
	return testenv.StartLoadgen(t, "../../test/loadgen", filepath.Dir(binary), loadUID, rate, d)
}
