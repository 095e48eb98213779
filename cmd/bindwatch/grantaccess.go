package main

import (
	"fmt"
	"os/user"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/bindwatch/bindwatch/internal/hostaccess"
)

func grantAccessCommand() *cobra.Command {
	var group, tracefs, bpffs string
	cmd := &cobra.Command{
		Use:   "grant-access [--group NAME] [--tracefs DIR] [--bpffs DIR]",
		Short: "let the agent's group reach its tracefs ids and bpffs directory (systemd runs this)",
		Long: "Lets the group search the tracefs directories down to the trace events the\n" +
			"agent attaches to and read their ids, and search bpffs's root, changing\n" +
			"nothing others may already do: the agent then needs no CAP_DAC_READ_SEARCH.\n" +
			"bindwatch.service runs it as root before the agent (ExecStartPre=+).\n" +
			"Prints each change.",
		Args: noArgs,
		RunE: func(*cobra.Command, []string) error { return runGrantAccess(group, tracefs, bpffs) },
	}
	cmd.Flags().StringVar(&group, "group", "bindwatch", "group to give access, by name or number")
	cmd.Flags().StringVar(&tracefs, "tracefs", "", "tracefs mount (default: /sys/kernel/tracing, or /sys/kernel/debug/tracing)")
	cmd.Flags().StringVar(&bpffs, "bpffs", "/sys/fs/bpf", "bpffs mount holding the agent's pin directory; empty: leave bpffs alone")
	return cmd
}

func runGrantAccess(group, tracefs, bpffs string) error {
	gid, err := strconv.Atoi(group)
	if err != nil {
		g, err := user.LookupGroup(group)
		if err != nil {
			return err
		}
		if gid, err = strconv.Atoi(g.Gid); err != nil {
			return err
		}
	}
	root := tracefs
	if root == "" {
		root, err = hostaccess.FindRoot()
	}
	var changes []hostaccess.Change
	if err == nil {
		changes, err = hostaccess.GrantTracefs(root, gid, hostaccess.Events)
	}
	if bpffs != "" {
		more, berr := hostaccess.GrantSearch(bpffs, gid)
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
