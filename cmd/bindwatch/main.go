// Command bindwatch sees every socket bind on a Linux host through eBPF.
//
//	bindwatch snoop ...          print binds like bcc's bindsnoop
//	bindwatch run --config FILE  the agent: enrich, encode Avro, publish to Kafka
//	bindwatch consume ...        decode the topic back to JSON lines
//	bindwatch schema ...         print or register the Avro schema
//	bindwatch config check FILE  validate an agent configuration
//	bindwatch policy check FILE  validate an audit policy: errors and warnings
//	bindwatch completion SHELL   shell completion
//	bindwatch version
//
// This file wires the commands together (cobra, on pflag); each command's
// flags and logic are in its own file.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

// newRootCmd builds the whole command tree.
func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "bindwatch <command> [flags]",
		Short: "see every socket bind, listen and close on a Linux host through eBPF",
		Long: "bindwatch sees every bind(), listen() and end of listening on a Linux host through\n" +
			"eBPF, and what already listens when it starts. As an agent (bindwatch run) it\n" +
			"publishes them to Kafka as Avro; bindwatch snoop prints them like bcc's bindsnoop.",
		SilenceUsage:      true,
		SilenceErrors:     true,
		DisableAutoGenTag: true,
	}
	groupCommand(root)
	root.AddCommand(
		snoopCommand(),
		runCommand(),
		consumeCommand(),
		schemaCommand(),
		unpinCommand(),
		listenersCommand(),
		auditCommand(),
		grantAccessCommand(),
		configCommand(),
		policyCommand(),
		versionCommand(),
		manCommand(),
	)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return usageErr(c, err) })
	root.SetHelpFunc(func(c *cobra.Command, _ []string) { fmt.Fprint(c.OutOrStdout(), helpText(c)) })
	root.SetUsageFunc(func(c *cobra.Command) error { _, err := fmt.Fprint(c.OutOrStderr(), helpText(c)); return err })
	root.InitDefaultCompletionCmd()
	for _, c := range root.Commands() {
		if c.Name() == "completion" {
			// cobra's own generator, worded like the other commands.
			c.Use = "completion bash|zsh|fish|powershell"
			c.Short = "print a shell completion script: bash, zsh, fish or powershell"
			groupCommand(c)
			for _, sh := range c.Commands() {
				sh.Short = "print the completion script for " + sh.Name()
			}
		}
	}
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		c.Flags().SortFlags = false
		c.DisableFlagsInUseLine = true
		c.DisableAutoGenTag = true
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	return root
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

func (e *usageError) Error() string {
	if e.err == nil {
		return "missing command"
	}
	return e.err.Error()
}

// usageErr is err as a usageError of c: the flags for a command that runs,
// the whole help for one that only holds commands. A nil err prints the
// usage alone.
func usageErr(c *cobra.Command, err error) error {
	usage := c.LocalFlags().FlagUsages()
	if c.HasAvailableSubCommands() {
		usage = helpText(c)
	}
	return &usageError{err: err, usage: usage}
}

// noArgs refuses positional arguments.
func noArgs(c *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageErr(c, fmt.Errorf("unexpected argument %q", args[0]))
	}
	return nil
}

// completeWords has shell completion offer these values for a flag.
func completeWords(c *cobra.Command, flag string, words ...string) {
	if err := c.RegisterFlagCompletionFunc(flag, cobra.FixedCompletions(words, cobra.ShellCompDirectiveNoFileComp)); err != nil {
		panic(err) // a flag that does not exist: a bug
	}
}

// groupCommand makes c a command that only holds commands: without one it
// prints its usage and exits 2, and an unknown one is a usage error.
func groupCommand(c *cobra.Command) {
	c.Args = func(c *cobra.Command, args []string) error {
		if len(args) > 0 {
			err := fmt.Errorf("unknown command %q", args[0])
			if c.SuggestionsMinimumDistance <= 0 {
				c.SuggestionsMinimumDistance = 2
			}
			if s := c.SuggestionsFor(args[0]); len(s) > 0 {
				err = fmt.Errorf("unknown command %q; did you mean %s?", args[0], strings.Join(s, " or "))
			}
			return usageErr(c, err)
		}
		return nil
	}
	c.RunE = func(c *cobra.Command, _ []string) error { return usageErr(c, nil) }
}

// execute runs the command line args and returns the command it ran.
func execute(args []string) (*cobra.Command, error) {
	root := newRootCmd()
	if args == nil {
		args = []string{}
	}
	root.SetArgs(args)
	return root.ExecuteC()
}

// runSubcommand runs one command with its arguments, as the tests do.
func runSubcommand(name string, args []string) error {
	_, err := execute(append([]string{name}, args...))
	return err
}

func main() {
	cmd, err := execute(os.Args[1:])
	os.Exit(report(os.Stderr, cmd, err))
}

// report prints err the way bindwatch always has, "bindwatch CMD: error",
// and returns the exit status: 0, 2 for a bad command line (with the
// usage), an exitError's own code, else 1.
func report(w io.Writer, cmd *cobra.Command, err error) int {
	if err == nil {
		return 0
	}
	name := "bindwatch"
	if cmd != nil {
		name = cmd.CommandPath()
	}
	var uerr *usageError
	var eerr *exitError
	switch {
	case errors.As(err, &eerr):
		fmt.Fprintf(w, "%s: %v\n", name, eerr.err)
		return eerr.code
	case errors.As(err, &uerr):
		if uerr.err == nil {
			fmt.Fprint(w, uerr.usage)
		} else {
			fmt.Fprintf(w, "%s: %v\n\n%s", name, uerr.err, uerr.usage)
		}
		return 2
	default:
		fmt.Fprintf(w, "%s: %v\n", name, err)
		return 1
	}
}

// helpText is a command's help: its usage lines (the synopsis in Use, each
// further form on a line of its own), what it does, its flags or its
// commands, and its examples.
func helpText(c *cobra.Command) string {
	var b strings.Builder
	parent := ""
	if c.HasParent() {
		parent = c.Parent().CommandPath() + " "
	}
	for i, line := range strings.Split(c.Use, "\n") {
		switch {
		case i == 0:
			b.WriteString("usage: " + parent + line + "\n")
		case strings.HasPrefix(line, " "): // the line before, wrapped
			b.WriteString("       " + strings.Repeat(" ", len(parent)) + line + "\n")
		default: // another form
			b.WriteString("       " + parent + line + "\n")
		}
	}
	if c.Long != "" {
		b.WriteString("\n" + strings.TrimRight(c.Long, "\n") + "\n")
	} else if c.Short != "" {
		b.WriteString("\n" + c.Short + "\n")
	}
	if c.HasAvailableSubCommands() {
		b.WriteString("\ncommands:\n")
		width := 0
		for _, sub := range c.Commands() {
			if sub.IsAvailableCommand() {
				width = max(width, len(sub.Name()))
			}
		}
		for _, sub := range c.Commands() {
			if sub.IsAvailableCommand() {
				fmt.Fprintf(&b, "  %-*s %s\n", width, sub.Name(), sub.Short)
			}
		}
		fmt.Fprintf(&b, "\nRun '%s <command> -h' for its flags.\n", c.CommandPath())
	} else if flags := c.LocalFlags().FlagUsages(); flags != "" {
		b.WriteString("\n" + flags)
	}
	if c.Example != "" {
		b.WriteString("\n" + strings.TrimRight(c.Example, "\n") + "\n")
	}
	return b.String()
}
