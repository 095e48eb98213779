package snoop

import (
	"fmt"
	"io"
	"strconv"

	"github.com/bindwatch/bindwatch/bpf"
)

// The listener table (snoop --listen): bindsnoop's PID, COMM, PROT, ADDR,
// PORT and OPTS, then what a listener adds: the event, the backlog a listen
// set, how long a closed socket listened, and the cookie that joins a
// socket's records.
const (
	listenHeaderFmt     = "%8s %-12.12s %-6s %-5s %-15s %-5s %5s %7s %10s %s\n"
	listenRowFmt        = "%8d %-12.12s %-6s %-5s %-15.15s %5d %-5s %7s %10s %d\n"
	wideListenHeaderFmt = "%10s %-12.12s %-6s %-5s %-39s %-5s %5s %7s %10s %s\n"
	wideListenRowFmt    = "%10d %-12.12s %-6s %-5s %-39s %5d %-5s %7s %10s %d\n"
)

// ListenWriter writes one row per listen or close record; binds are left out.
type ListenWriter struct {
	w       io.Writer
	cols    Columns
	firstNS uint64
	started bool
}

// NewListenWriter returns a writer for the given columns.
func NewListenWriter(w io.Writer, cols Columns) *ListenWriter {
	return &ListenWriter{w: w, cols: cols}
}

// Header writes the column titles.
func (l *ListenWriter) Header() error {
	format := listenHeaderFmt
	if l.cols.Wide {
		format = wideListenHeaderFmt
	}
	_, err := fmt.Fprintf(l.w, prefixHeader(l.cols)+format,
		"PID", "COMM", "EVENT", "PROT", "ADDR", "PORT", "OPTS", "BACKLOG", "LISTENED", "COOKIE")
	return err
}

// Write prints a listen or close record as one row.
func (l *ListenWriter) Write(ev *bpf.Event) error {
	if ev.Kind != bpf.KindListen && ev.Kind != bpf.KindClose {
		return nil
	}
	if !l.started {
		l.firstNS, l.started = ev.BootNS, true
	}
	backlog, listened := "-", "-"
	if ev.Kind == bpf.KindListen {
		backlog = strconv.FormatUint(uint64(ev.Backlog), 10)
	} else if ev.ListenNS > 0 {
		listened = strconv.FormatFloat(float64(ev.ListenNS)/1e9, 'f', 6, 64)
	}
	format := listenRowFmt
	if l.cols.Wide {
		format = wideListenRowFmt
	}
	event := "LISTEN"
	if ev.Kind == bpf.KindClose {
		event = "CLOSE"
	}
	_, err := fmt.Fprintf(l.w, prefixRow(l.cols, ev, l.firstNS)+format, ev.PID, ev.CommString(), event,
		bpf.ProtocolName(ev.Protocol), addrString(ev.EffectiveAddr()), ev.Port, ev.Opts, backlog, listened, ev.Cookie)
	return err
}
