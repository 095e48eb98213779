package snoop

import (
	"cmp"
	"fmt"
	"io"
	"slices"

	"github.com/bindwatch/bindwatch/bpf"
)

// endpoint is a local address and port, the key of the --count table.
type endpoint struct {
	addr string
	port uint16
}

// Counter counts binds per local endpoint for --count.
type Counter struct {
	counts map[endpoint]uint64
}

// NewCounter returns an empty counter.
func NewCounter() *Counter { return &Counter{counts: map[endpoint]uint64{}} }

// Add counts ev under the endpoint its row would show.
func (c *Counter) Add(ev *bpf.Event) {
	addr, port := Endpoint(ev)
	c.counts[endpoint{addr, port}]++
}

// WriteTable prints bindsnoop's --count table, most binds first; ties are
// ordered by address and port so the output is stable.
func (c *Counter) WriteTable(w io.Writer) error {
	type row struct {
		endpoint
		n uint64
	}
	rows := make([]row, 0, len(c.counts))
	for e, n := range c.counts {
		rows = append(rows, row{e, n})
	}
	slices.SortFunc(rows, func(a, b row) int {
		return cmp.Or(cmp.Compare(b.n, a.n), cmp.Compare(a.addr, b.addr), cmp.Compare(a.port, b.port))
	})
	if _, err := fmt.Fprintf(w, "\n%-32s %20s     %-10s\n", "LADDR", "LPORT", "BINDS"); err != nil {
		return err
	}
	for _, r := range rows {
		if _, err := fmt.Fprintf(w, "%-32s %20d     %-10d\n", r.addr, r.port, r.n); err != nil {
			return err
		}
	}
	return nil
}
