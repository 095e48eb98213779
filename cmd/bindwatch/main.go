// Command bindwatch sees every socket bind on a Linux host through eBPF.
//
//	bindwatch snoop ...          print binds like bcc's bindsnoop
//	bindwatch run --config FILE  the agent: enrich, encode Avro, publish to Kafka
//	bindwatch consume ...        decode the topic back to JSON lines
//	bindwatch schema ...         print or register the Avro schema
//	bindwatch version
package main

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/spf13/pflag"
)

// command is one subcommand: its usage line and what it runs.
type command struct {
	summary string
	run     func(args []string) error
}

var commands = map[string]command{
	"snoop":        {"print binds as they happen, like bcc's bindsnoop", runSnoop},
	"run":          {"the agent: publish binds to Kafka as Avro (systemd runs this)", runAgent},
	"consume":      {"decode the topic's Avro messages to JSON lines", runConsume},
	"schema":       {"print the Avro schema, or register it", runSchema},
	"unpin":        {"detach the agent's pinned BPF programs and free their maps", runUnpin},
	"listeners":    {"what listens on this host now (or, with --brokers, on the fleet)", runListeners},
	"audit":        {"find unexpected listeners across the fleet: a Kafka consumer-group member", runAudit},
	"grant-access": {"let the agent's group reach its tracefs ids and bpffs directory (systemd runs this)", runGrantAccess},
	"version":      {"print the version", runVersion},
}

// exitError ends the command with a given exit status.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }

// usageError is a bad command line: printed with the usage, exit status 2.
type usageError struct {
	err   error
	usage string
}

func (e *usageError) Error() string { return e.err.Error() }

func main() {
	if len(os.Args) < 2 || os.Args[1] == "-h" || os.Args[1] == "--help" || os.Args[1] == "help" {
		fmt.Fprint(os.Stderr, topUsage())
		if len(os.Args) < 2 {
			os.Exit(2)
		}
		return
	}
	cmd, ok := commands[os.Args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "bindwatch: unknown command %q\n\n%s", os.Args[1], topUsage())
		os.Exit(2)
	}
	err := cmd.run(os.Args[2:])
	var uerr *usageError
	var eerr *exitError
	switch {
	case err == nil:
	case errors.Is(err, pflag.ErrHelp):
	case errors.As(err, &eerr):
		fmt.Fprintf(os.Stderr, "bindwatch %s: %v\n", os.Args[1], eerr.err)
		os.Exit(eerr.code)
	case errors.As(err, &uerr):
		fmt.Fprintf(os.Stderr, "bindwatch %s: %v\n\n%s", os.Args[1], uerr.err, uerr.usage)
		os.Exit(2)
	default:
		fmt.Fprintf(os.Stderr, "bindwatch %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

func topUsage() string {
	var b strings.Builder
	b.WriteString("usage: bindwatch <command> [flags]\n\ncommands:\n")
	names := make([]string, 0, len(commands))
	for name := range commands {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		fmt.Fprintf(&b, "  %-9s %s\n", name, commands[name].summary)
	}
	b.WriteString("\nRun 'bindwatch <command> -h' for its flags.\n")
	return b.String()
}

// parseFlags parses args into fs, turning a bad command line into a usageError.
func parseFlags(fs *pflag.FlagSet, args []string) error {
	fs.SetOutput(os.Stderr)
	fs.SortFlags = false
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return err
		}
		return &usageError{err: err, usage: fs.FlagUsages()}
	}
	if fs.NArg() > 0 {
		return &usageError{err: fmt.Errorf("unexpected argument %q", fs.Arg(0)), usage: fs.FlagUsages()}
	}
	return nil
}
