package main

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/bindwatch/bindwatch/bpf"
	"github.com/bindwatch/bindwatch/internal/config"
)

func unpinCommand() *cobra.Command {
	var path, dir string
	var ifOrphaned bool
	cmd := &cobra.Command{
		Use:   "unpin [--config FILE] [--pin-dir DIR] [--if-orphaned]",
		Short: "detach the agent's pinned BPF programs and free their maps",
		Long: "Detaches the BPF programs the agent left pinned so that restarts lose no bind,\n" +
			"and frees their maps with any events still unread in them. Run it after\n" +
			"stopping the agent for good (an uninstall); a running agent keeps capturing\n" +
			"until it exits.\n" +
			"\n" +
			"With --if-orphaned it removes the pins only when no agent runs and the\n" +
			"capture's lease has expired: no agent renewed it for capture.orphan_timeout,\n" +
			"so the programs report nothing any more, yet every bind (and, on the\n" +
			"tracepoint hook, every system call) still runs them. It reads the lease from\n" +
			"the pinned lease map and refuses, exiting 0 and saying why, while an agent\n" +
			"runs or starts (every agent holds the pin directory's lock, which this takes;\n" +
			"an agent starting meanwhile waits, then pins a fresh capture), while the\n" +
			"lease runs (an agent restarting or stopped for an upgrade keeps its capture),\n" +
			"and when capture has no lease (capture.orphan_timeout 0). The directory\n" +
			"itself stays. The packages run it from bindwatch-unpin.timer (every 5\n" +
			"minutes), so a stopped and disabled agent stops costing within\n" +
			"capture.orphan_timeout plus 5 minutes; events captured before the lease ran\n" +
			"out and never read go with the pins (the next agent starts a new sequence).",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runUnpin(cmd, path, dir, ifOrphaned) },
	}
	cmd.Flags().StringVar(&path, "config", "", "agent configuration whose capture.pin_dir to clear")
	cmd.Flags().StringVar(&dir, "pin-dir", "", "pin directory to clear (default: the configuration's capture.pin_dir)")
	cmd.Flags().BoolVar(&ifOrphaned, "if-orphaned", false, "only if no agent runs and the pinned capture's lease has expired")
	return cmd
}

func runUnpin(cmd *cobra.Command, path, dir string, ifOrphaned bool) error {
	target := dir
	if target == "" {
		cfg, err := config.Load(path, os.Environ(), nil)
		if err != nil {
			return err
		}
		target = cfg.Capture.PinDir
	}
	if target == "" {
		return usageErr(cmd, fmt.Errorf("no pin directory: the configuration pins nothing and --pin-dir is empty"))
	}
	if ifOrphaned {
		v, err := bpf.UnpinIfOrphaned(target)
		if err != nil {
			return err
		}
		if !v.Unpinned {
			fmt.Printf("kept the pins under %s: %s\n", target, v.Reason)
			return nil
		}
		fmt.Printf("removed the %d pins under %s: the lease expired %v ago and no agent runs\n",
			v.Pins, target, v.Expired.Round(time.Second))
		return nil
	}
	if err := bpf.RemovePins(target); err != nil {
		return err
	}
	fmt.Printf("removed the pins under %s\n", target)
	return nil
}
