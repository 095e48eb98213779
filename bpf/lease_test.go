package bpf

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/bindwatch/bindwatch/test/testenv"
)

// TestLeaseStopsOrphanedCapture: an agent's pinned capture goes on after it
// exits, until its lease runs out; then binds are skipped and counted, and
// the next agent learns how long capture was orphaned and re-arms it.
func TestLeaseStopsOrphanedCapture(t *testing.T) {
	testenv.RequireRoot(t)
	dir := filepath.Join("/sys/fs/bpf", fmt.Sprintf("bindwatch-lease-test-%d", os.Getpid()))
	t.Cleanup(func() { RemovePins(dir) })
	const lease = 3 * time.Second // the VM under emulation is slow: room for loading and binding
	opts := Options{Filter: Filter{PID: uint32(os.Getpid())}, PinDir: dir, OrphanTimeout: lease}
	first, err := Load(opts)
	if err != nil {
		t.Fatal(err)
	}
	if first.Orphaned() != 0 {
		t.Fatalf("a fresh lease reports %v orphaned", first.Orphaned())
	}
	before := must(first.NextSeq())
	bindN(t, 2)
	if n := must(first.NextSeq()); n != before+2 {
		t.Fatalf("with the lease held, %d binds reported, want 2", n-before)
	}
	// The agent exits without unpinning: capture goes on within the lease.
	first.Close()
	second, err := Load(Options{Filter: opts.Filter, PinDir: dir}) // reads, never renews: no timeout
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	// A lease of 0 clears it; put back a short one as an exited agent left it.
	second.orphanTimeout = lease
	if err := second.RenewLease(); err != nil {
		t.Fatal(err)
	}
	second.orphanTimeout = 0
	bindN(t, 1)
	mid := must(second.NextSeq())
	time.Sleep(lease + 500*time.Millisecond)
	bindN(t, 3)
	if n := must(second.NextSeq()); n != mid {
		t.Fatalf("after the lease ran out, %d binds were still reported", n-mid)
	}
	if d := must(second.Drops()); d.Orphaned < 3 {
		t.Fatalf("orphaned skips counted %d, want at least 3", d.Orphaned)
	}
	second.Close()

	third, err := Load(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer third.Close()
	if o := third.Orphaned(); o < 500*time.Millisecond || o > time.Minute {
		t.Fatalf("the next agent sees capture orphaned for %v, want about %v", o, 500*time.Millisecond)
	}
	now := must(third.NextSeq())
	bindN(t, 1)
	if n := must(third.NextSeq()); n != now+1 {
		t.Fatalf("after re-arming, %d binds reported, want 1", n-now)
	}
}

// TestDropsMinus: every counter is subtracted, so a new drop reason cannot
// be left out of what an agent counts as its own.
func TestDropsMinus(t *testing.T) {
	var now, before Drops
	n := 0
	// Every counter, in the by-kind arrays too, gets its own value.
	var fill func(nv, bv reflect.Value)
	fill = func(nv, bv reflect.Value) {
		switch nv.Kind() {
		case reflect.Uint64:
			nv.SetUint(uint64(1000 + n))
			bv.SetUint(uint64(n))
			n++
		case reflect.Struct:
			for i := range nv.NumField() {
				fill(nv.Field(i), bv.Field(i))
			}
		case reflect.Array:
			for i := range nv.Len() {
				fill(nv.Index(i), bv.Index(i))
			}
		default:
			t.Fatalf("Drops has a %s: teach this test to fill it", nv.Kind())
		}
	}
	fill(reflect.ValueOf(&now).Elem(), reflect.ValueOf(&before).Elem())
	var check func(path string, v reflect.Value)
	check = func(path string, v reflect.Value) {
		switch v.Kind() {
		case reflect.Uint64:
			if v.Uint() != 1000 {
				t.Errorf("Minus: %s = %d, want 1000", path, v.Uint())
			}
		case reflect.Struct:
			for i := range v.NumField() {
				check(path+"."+v.Type().Field(i).Name, v.Field(i))
			}
		case reflect.Array:
			for i := range v.Len() {
				check(fmt.Sprintf("%s[%d]", path, i), v.Index(i))
			}
		}
	}
	check("Drops", reflect.ValueOf(now.Minus(before)))
}
