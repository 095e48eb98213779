package spool

import "errors"

var (
	// ErrEmpty: Peek found no unacknowledged batch.
	ErrEmpty = errors.New("spool is empty")
	// ErrClosed: the spool was closed.
	ErrClosed = errors.New("spool is closed")
	// ErrFull: DropNewest refused a batch; its messages are counted.
	ErrFull = errors.New("spool is full")
	// ErrTooLarge: a batch exceeds MaxBytes by itself; its messages are
	// counted.
	ErrTooLarge = errors.New("batch is larger than the spool")
	// ErrNotWritten: TryAppend could not write a batch (a full disk, an
	// I/O error); it is not counted as dropped, the caller still has it.
	ErrNotWritten = errors.New("batch not written to the spool")
	// ErrNotHead: Ack was given a batch other than the one Peek returns.
	ErrNotHead = errors.New("batch is not the oldest unacknowledged one")
)
