package spool

import (
	"reflect"
	"testing"
)

// TestPlanSyncs pins every sync of every policy, as options.go describes
// them: a row per syncPlan field, a column per policy.
func TestPlanSyncs(t *testing.T) {
	rows := []struct {
		field                string
		always, batch, never bool
	}{
		{"segmentOnAppend", true, false, false},
		{"segmentOnSeal", true, true, false},
		// always has synced every record when it was appended
		{"segmentBeforePeek", false, true, false},
		{"segmentsAtOpen", true, true, false},
		{"ackOnAck", true, false, false},
		{"ackBeforeRemove", true, true, false},
		{"ackAtOpen", true, true, false},
		{"ackAtClose", true, true, false},
		{"dirOnCreate", true, true, false},
		{"dirOnRemove", true, false, false},
		{"dirAtOpen", true, true, false},
		{"dirAtClose", true, true, false},
	}
	if n := reflect.TypeFor[syncPlan]().NumField(); n != len(rows) {
		t.Fatalf("syncPlan has %d fields, the table %d rows", n, len(rows))
	}
	for _, policy := range policies {
		plan := reflect.ValueOf(planSyncs(policy))
		for _, r := range rows {
			f := plan.FieldByName(r.field)
			if !f.IsValid() {
				t.Fatalf("syncPlan has no field %s", r.field)
			}
			want := map[FsyncPolicy]bool{FsyncAlways: r.always, FsyncBatch: r.batch, FsyncNever: r.never}[policy]
			if f.Bool() != want {
				t.Errorf("planSyncs(%s).%s = %v, want %v", policy, r.field, f.Bool(), want)
			}
		}
	}
}
