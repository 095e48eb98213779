package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/bindwatch/bindwatch/bpf"
	"github.com/bindwatch/bindwatch/internal/snoop"
	"github.com/bindwatch/bindwatch/pipeline/enrich"
)

const snoopExamples = `examples:
    bindwatch snoop            # trace all binds
    bindwatch snoop -t         # include timestamps
    bindwatch snoop -w         # wider columns (fit IPv6)
    bindwatch snoop -p 181     # only trace PID 181
    bindwatch snoop -P 80,81   # only trace ports 80 and 81
    bindwatch snoop -U         # include UID
    bindwatch snoop -u 1000    # only trace UID 1000
    bindwatch snoop -E         # report bind errors, with the endpoint asked for
    bindwatch snoop --count    # count binds per local address and port
    bindwatch snoop --cgroupmap mappath  # only trace cgroups in this BPF map
    bindwatch snoop --mntnsmap mappath   # only trace mount namespaces in the map
    bindwatch snoop -j         # JSON lines with every captured field

OPTS shows the socket options that shape the bind:
    SOL_IP     IP_FREEBIND              F....
    SOL_IP     IP_TRANSPARENT           .T...
    SOL_IP     IP_BIND_ADDRESS_NO_PORT  ..N..
    SOL_SOCKET SO_REUSEADDR             ...R.
    SOL_SOCKET SO_REUSEPORT             ....r
SO_BINDTODEVICE's interface is reported as the IF index.
`

// snoopFlags are bindsnoop's options plus bindwatch's own.
type snoopFlags struct {
	cols      snoop.Columns
	pid       string
	ports     string
	uid       string
	count     bool
	cgroupMap string
	mntnsMap  string
	json      bool
	hook      string
	duration  time.Duration
	listen    bool
}

func (f *snoopFlags) register(fs *pflag.FlagSet) {
	fs.BoolVarP(&f.cols.Timestamp, "timestamp", "t", false, "include timestamp on output")
	fs.BoolVarP(&f.cols.Wide, "wide", "w", false, "wide column output (fits IPv6 addresses)")
	fs.StringVarP(&f.pid, "pid", "p", "", "trace this PID only")
	fs.StringVarP(&f.ports, "port", "P", "", "comma-separated list of ports to trace")
	fs.BoolVarP(&f.cols.Errors, "errors", "E", false, "include errors in the output")
	fs.BoolVarP(&f.cols.UID, "print-uid", "U", false, "include UID on output")
	fs.StringVarP(&f.uid, "uid", "u", "", "trace this UID only")
	fs.BoolVar(&f.count, "count", false, "count binds per src ip and port")
	fs.StringVar(&f.cgroupMap, "cgroupmap", "", "trace cgroups in this BPF map only")
	fs.StringVar(&f.mntnsMap, "mntnsmap", "", "trace mount namespaces in this BPF map only")
	fs.BoolVarP(&f.json, "json", "j", false, "print one JSON object per bind, every captured field")
	fs.StringVar(&f.hook, "hook", "auto", "kernel hook: auto, fexit, kprobe or tracepoint")
	fs.BoolVar(&f.listen, "listen", false, "print listen and close records instead of binds")
	fs.DurationVar(&f.duration, "duration", 0, "stop after this long (e.g. 10s); default: until Ctrl-C")
}

// options turns the flags into probe options, refusing bad values.
func (f *snoopFlags) options() (bpf.Options, error) {
	var o bpf.Options
	var err error
	if o.Hook, err = bpf.ParseHook(f.hook); err != nil {
		return o, fmt.Errorf("--hook: %w", err)
	}
	if f.pid != "" {
		n, err := strconv.ParseUint(f.pid, 10, 32)
		if err != nil || n == 0 {
			return o, fmt.Errorf("invalid PID %q: want a positive process id", f.pid)
		}
		o.Filter.PID = uint32(n)
	}
	if f.uid != "" {
		n, err := strconv.ParseUint(f.uid, 10, 32)
		if err != nil {
			return o, fmt.Errorf("invalid UID %q: want a user id, 0 or more", f.uid)
		}
		o.Filter.UID, o.Filter.HasUID = uint32(n), true
	}
	if f.ports != "" {
		if o.Filter.Ports, err = bpf.ParsePorts(f.ports); err != nil {
			return o, err
		}
	}
	if f.duration < 0 {
		return o, fmt.Errorf("invalid --duration %s: want a positive duration", f.duration)
	}
	if f.json && f.count {
		return o, errors.New("--json and --count cannot be combined")
	}
	if f.listen && f.count {
		return o, errors.New("--listen and --count cannot be combined")
	}
	o.Filter.Errors = f.cols.Errors
	o.Filter.Listeners = f.listen
	o.Filter.CgroupMap = f.cgroupMap
	o.Filter.MntNSMap = f.mntnsMap
	return o, nil
}

func snoopCommand() *cobra.Command {
	var f snoopFlags
	cmd := &cobra.Command{
		Use: "snoop [-t] [-w] [-p PID] [-P PORTS] [-E] [-U] [-u UID] [--count]\n" +
			"      [--cgroupmap PATH] [--mntnsmap PATH] [-j] [--hook H] [--duration D] [--listen]",
		Short:   "print binds as they happen, like bcc's bindsnoop",
		Long:    "Trace binds (with --listen: listens and the ends of listening)",
		Example: snoopExamples,
		Args:    noArgs,
		RunE:    func(cmd *cobra.Command, _ []string) error { return f.run(cmd) },
	}
	f.register(cmd.Flags())
	hooks := []string{string(bpf.HookAuto)}
	for _, h := range bpf.Hooks {
		hooks = append(hooks, string(h))
	}
	completeWords(cmd, "hook", hooks...)
	return cmd
}

// runSnoop runs bindwatch snoop with these arguments.
func runSnoop(args []string) error { return runSubcommand("snoop", args) }

func (f *snoopFlags) run(cmd *cobra.Command) error {
	opts, err := f.options()
	if err != nil {
		return usageErr(cmd, err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if f.duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, f.duration)
		defer cancel()
	}

	opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	probe, err := bpf.Load(opts)
	if err != nil {
		return err
	}
	defer probe.Close()
	rd, err := probe.NewReader()
	if err != nil {
		return err
	}
	defer rd.Close()
	// On a signal or at --duration: stop capture, then drain what the kernel
	// already delivered before printing the --count table.
	go func() {
		<-ctx.Done()
		probe.Detach()
		if err := rd.Flush(); err != nil {
			rd.Close()
		}
	}()

	out := bufio.NewWriterSize(os.Stdout, 64<<10)
	defer out.Flush()
	fmt.Fprintln(os.Stderr, "Tracing binds ... Hit Ctrl-C to end")
	sink, err := newSnoopSink(out, f)
	if err != nil {
		return err
	}
	if err := readEvents(rd, sink, out); err != nil {
		return err
	}
	if err := sink.finish(); err != nil {
		return err
	}
	return reportDrops(probe)
}

// snoopSink is where decoded events go: rows, JSON lines or the count table.
type snoopSink struct {
	write  func(*bpf.Event) error
	finish func() error
}

func newSnoopSink(out *bufio.Writer, f *snoopFlags) (snoopSink, error) {
	switch {
	case f.count:
		c := snoop.NewCounter()
		return snoopSink{
			write:  func(ev *bpf.Event) error { c.Add(ev); return nil },
			finish: func() error { return c.WriteTable(out) },
		}, nil
	case f.json:
		clock, err := enrich.NewClock()
		if err != nil {
			return snoopSink{}, err
		}
		j := snoop.NewJSONWriter(out, clock.Wall)
		write := j.Write
		if f.listen {
			write = func(ev *bpf.Event) error {
				if ev.Kind == bpf.KindBind {
					return nil
				}
				return j.Write(ev)
			}
		}
		return snoopSink{write: write, finish: func() error { return nil }}, nil
	case f.listen:
		l := snoop.NewListenWriter(out, f.cols)
		if err := l.Header(); err != nil {
			return snoopSink{}, err
		}
		if err := out.Flush(); err != nil {
			return snoopSink{}, err
		}
		return snoopSink{write: l.Write, finish: func() error { return nil }}, nil
	default:
		t := snoop.NewTextWriter(out, f.cols)
		if err := t.Header(); err != nil {
			return snoopSink{}, err
		}
		// The header shows before the first bind, as bindsnoop's does.
		if err := out.Flush(); err != nil {
			return snoopSink{}, err
		}
		return snoopSink{write: t.Write, finish: func() error { return nil }}, nil
	}
}

// readEvents feeds events to sink until the reader is closed, flushing the
// output and freeing the ring's space whenever nothing more is waiting.
func readEvents(rd *bpf.Reader, sink snoopSink, out *bufio.Writer) error {
	var ev bpf.Event
	defer rd.CommitAll()
	for n := 1; ; n++ {
		if err := rd.Read(&ev); err != nil {
			if errors.Is(err, bpf.ErrFlushed) || errors.Is(err, bpf.ErrClosed) {
				return nil
			}
			return fmt.Errorf("reading events: %w", err)
		}
		if err := sink.write(&ev); err != nil {
			return fmt.Errorf("writing output: %w", err)
		}
		if rd.Pending() == 0 || n%256 == 0 {
			// Printed is as safe as snoop makes an event.
			rd.CommitAll()
		}
		if rd.Pending() == 0 {
			if err := out.Flush(); err != nil {
				return fmt.Errorf("writing output: %w", err)
			}
		}
	}
}

// reportDrops tells the user, on stderr, about records the kernel lost.
func reportDrops(p *bpf.Probe) error {
	d, err := p.Drops()
	if err != nil {
		return err
	}
	if d.RingBufferFull > 0 || d.PendingFull > 0 {
		fmt.Fprintf(os.Stderr, "bindwatch: lost %d binds (ring buffer full) and %d (entry state full)\n",
			d.RingBufferFull, d.PendingFull)
	}
	if d.NoSocket > 0 {
		fmt.Fprintf(os.Stderr, "bindwatch: %d binds or listens succeeded on an fd whose socket could not be found: not shown\n", d.NoSocket)
	}
	return nil
}
