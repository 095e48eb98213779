package sink

import (
	"errors"
	"testing"
)

func TestError(t *testing.T) {
	down := errors.New("broker down")
	tooBig := Reject(errors.New("too large"))
	e := &Error{Op: "kafka publish", Total: 5, Failed: []int{1, 2, 3, 4}, Errs: []error{tooBig, down, down, ErrNotSent}}
	want := "kafka publish: 4 of 5 messages failed: 1 × too large (first at message 1); 2 × broker down (first at message 2); 1 × " +
		ErrNotSent.Error() + " (first at message 4)"
	if e.Error() != want {
		t.Errorf("Error()\n got %s\nwant %s", e.Error(), want)
	}
	if !errors.Is(e, down) || !errors.Is(e, ErrNotSent) || !errors.Is(e, ErrRejected) {
		t.Error("errors.Is does not see every cause")
	}
	if !Rejected(tooBig) || Rejected(down) || tooBig.Error() != "too large" {
		t.Errorf("Rejected(%v)=%v, Rejected(%v)=%v", tooBig, Rejected(tooBig), down, Rejected(down))
	}
}
