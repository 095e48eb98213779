// Package snoop prints bind events the way bcc's bindsnoop does: its columns,
// its --count table, plus JSON lines with every captured field.
package snoop

import (
	"fmt"
	"io"
	"strconv"

	"github.com/bindwatch/bindwatch/bpf"
	"github.com/bindwatch/bindwatch/internal/safetext"
)

// Columns chooses bindsnoop's optional columns.
type Columns struct {
	Timestamp bool // -t: TIME(s), seconds since the first event
	Wide      bool // -w: room for IPv6 addresses, errno names in RC
	Errors    bool // -E: RC column
	UID       bool // -U: UID column
}

// bindsnoop's formats, from tools/bindsnoop.py. PROT is not truncated to
// four characters as bindsnoop does, so MPTCP stays readable.
const (
	headerFmt     = "%8s %-12.12s %-4s %-15s %-5s %5s %2s\n"
	rowFmt        = "%8d %-12.12s %-4s %-15.15s %5d %-5s %2d\n"
	wideHeaderFmt = "%10s %-12.12s %-4s %-39s %-5s %5s %2s\n"
	wideRowFmt    = "%10d %-12.12s %-4s %-39s %5d %-5s %2d\n"
)

// TextWriter writes one bindsnoop row per event.
type TextWriter struct {
	w       io.Writer
	cols    Columns
	firstNS uint64
	started bool
}

// NewTextWriter returns a writer for the given columns.
func NewTextWriter(w io.Writer, cols Columns) *TextWriter {
	return &TextWriter{w: w, cols: cols}
}

// prefixHeader is the titles of the optional columns before PID.
func prefixHeader(cols Columns) string {
	var prefix string
	if cols.Timestamp {
		prefix += fmt.Sprintf("%-9s ", "TIME(s)")
	}
	if cols.UID {
		prefix += fmt.Sprintf("%6s ", "UID")
	}
	if cols.Errors {
		if cols.Wide {
			prefix += fmt.Sprintf("%-25s ", "RC")
		} else {
			prefix += fmt.Sprintf("%3s ", "RC")
		}
	}
	return prefix
}

// prefixRow is ev's optional columns before PID.
func prefixRow(cols Columns, ev *bpf.Event, firstNS uint64) string {
	var prefix string
	if cols.Timestamp {
		prefix += fmt.Sprintf("%-9.6f ", float64(ev.BootNS-firstNS)/1e9)
	}
	if cols.UID {
		prefix += fmt.Sprintf("%6d ", ev.UID)
	}
	if cols.Errors {
		if cols.Wide {
			prefix += fmt.Sprintf("%-25s ", bpf.ErrnoName(ev.Errno()))
		} else {
			prefix += fmt.Sprintf("%3s ", strconv.Itoa(int(ev.Ret)))
		}
	}
	return prefix
}

// Header writes the column titles.
func (t *TextWriter) Header() error {
	prefix := prefixHeader(t.cols)
	format := headerFmt
	if t.cols.Wide {
		format = wideHeaderFmt
	}
	_, err := fmt.Fprintf(t.w, prefix+format, "PID", "COMM", "PROT", "ADDR", "PORT", "OPTS", "IF")
	return err
}

// Write prints ev as one row. A failed bind shows the address and port the
// caller asked for: the kernel has zeroed the socket's own by then.
func (t *TextWriter) Write(ev *bpf.Event) error {
	if !t.started {
		t.firstNS, t.started = ev.BootNS, true
	}
	prefix := prefixRow(t.cols, ev, t.firstNS)
	addr, port := Endpoint(ev)
	format := rowFmt
	if t.cols.Wide {
		format = wideRowFmt
	}
	// comm is whatever bytes the thread chose: escaped, so no row carries a
	// newline or a terminal escape, and cut whole to COMM's 12 characters.
	comm := safetext.Fit(safetext.Escape(ev.CommString()), 12)
	_, err := fmt.Fprintf(t.w, prefix+format, ev.PID, comm, bpf.ProtocolName(ev.Protocol),
		addr, port, ev.Opts, ev.BoundIf)
	return err
}

// Endpoint is the address and port a row shows: the effective ones after a
// successful bind, the requested ones after a failed one.
func Endpoint(ev *bpf.Event) (string, uint16) {
	if ev.Ret != 0 {
		return addrString(ev.RequestedAddr()), ev.ReqPort
	}
	return addrString(ev.EffectiveAddr()), ev.Port
}
