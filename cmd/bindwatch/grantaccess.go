package main

import (
	"fmt"
	"os"
	"os/user"
	"strconv"

	"github.com/spf13/pflag"

	"github.com/bindwatch/bindwatch/internal/hostaccess"
)

func runGrantAccess(args []string) error {
	fs := pflag.NewFlagSet("grant-access", pflag.ContinueOnError)
	group := fs.String("group", "bindwatch", "group to give access, by name or number")
	tracefs := fs.String("tracefs", "", "tracefs mount (default: /sys/kernel/tracing, or /sys/kernel/debug/tracing)")
	bpffs := fs.String("bpffs", "/sys/fs/bpf", "bpffs mount holding the agent's pin directory; empty: leave bpffs alone")
	fs.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: bindwatch grant-access [--group NAME] [--tracefs DIR] [--bpffs DIR]\n\n"+
			"Lets the group search the tracefs directories down to the trace events the\n"+
			"agent attaches to and read their ids, and search bpffs's root, changing\n"+
			"nothing others may already do: the agent then needs no CAP_DAC_READ_SEARCH.\n"+
			"bindwatch.service runs it as root before the agent (ExecStartPre=+).\n"+
			"Prints each change.\n\n%s", fs.FlagUsages())
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	gid, err := strconv.Atoi(*group)
	if err != nil {
		g, err := user.LookupGroup(*group)
		if err != nil {
			return err
		}
		if gid, err = strconv.Atoi(g.Gid); err != nil {
			return err
		}
	}
	root := *tracefs
	if root == "" {
		root, err = hostaccess.FindRoot()
	}
	var changes []hostaccess.Change
	if err == nil {
		changes, err = hostaccess.GrantTracefs(root, gid, hostaccess.Events)
	}
	if *bpffs != "" {
		more, berr := hostaccess.GrantSearch(*bpffs, gid)
		changes = append(changes, more...)
		if err == nil {
			err = berr
		}
	}
	for _, c := range changes {
		fmt.Printf("%s: mode %04o gid %d (was mode %04o gid %d)\n", c.Path, c.Mode, c.Gid, c.PrevMode, c.PrevGid)
	}
	return err
}
