package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/bindwatch/bindwatch/bpf"
	"github.com/bindwatch/bindwatch/internal/config"
)

func unpinCommand() *cobra.Command {
	var path, dir string
	cmd := &cobra.Command{
		Use:   "unpin [--config FILE] [--pin-dir DIR]",
		Short: "detach the agent's pinned BPF programs and free their maps",
		Long: "Detaches the BPF programs the agent left pinned so that restarts lose no bind,\n" +
			"and frees their maps with any events still unread in them. Run it after\n" +
			"stopping the agent for good (an uninstall); a running agent keeps capturing\n" +
			"until it exits.",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runUnpin(cmd, path, dir) },
	}
	cmd.Flags().StringVar(&path, "config", "", "agent configuration whose capture.pin_dir to clear")
	cmd.Flags().StringVar(&dir, "pin-dir", "", "pin directory to clear (default: the configuration's capture.pin_dir)")
	return cmd
}

func runUnpin(cmd *cobra.Command, path, dir string) error {
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
	if err := bpf.RemovePins(target); err != nil {
		return err
	}
	fmt.Printf("removed the pins under %s\n", target)
	return nil
}
