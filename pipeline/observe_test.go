package pipeline

import (
	"reflect"
	"testing"

	"github.com/bindwatch/bindwatch/bpf"
)

// TestKernelDropsEveryCounter: each of the kernel's drop counters reaches
// bindwatch_events_dropped_total under its own reason. A counter missing
// here is loss nobody is told about: no_socket, binds made on an fd whose
// socket the program could not find, was one.
func TestKernelDropsEveryCounter(t *testing.T) {
	var d bpf.Drops
	v := reflect.ValueOf(&d).Elem()
	for i := range v.NumField() {
		if v.Field(i).Kind() == reflect.Uint64 { // ByKind splits them: its own series
			v.Field(i).SetUint(uint64(100 + i))
		}
	}
	got := map[string]uint64{}
	addKernelDrops(got, d)
	want := map[string]uint64{"ring_buffer_full": d.RingBufferFull, "pending_full": d.PendingFull, "no_socket": d.NoSocket,
		"orphaned": d.Orphaned, "budget": d.Budget, "ring_reserved": d.RingReserved}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("kernel drops exported as %v, want %v", got, want)
	}
	seen := map[uint64]bool{}
	for _, n := range got {
		seen[n] = true
	}
	for i := range v.NumField() {
		if v.Field(i).Kind() == reflect.Uint64 && !seen[uint64(100+i)] {
			t.Errorf("bpf.Drops.%s is not exported as a drop reason", v.Type().Field(i).Name)
		}
	}
}
