package main

import (
	"fmt"
	"os"

	"github.com/spf13/pflag"

	"github.com/bindwatch/bindwatch/bpf"
	"github.com/bindwatch/bindwatch/internal/config"
)

func runUnpin(args []string) error {
	fs := pflag.NewFlagSet("unpin", pflag.ContinueOnError)
	path := fs.String("config", "", "agent configuration whose capture.pin_dir to clear")
	dir := fs.String("pin-dir", "", "pin directory to clear (default: the configuration's capture.pin_dir)")
	fs.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: bindwatch unpin [--config FILE] [--pin-dir DIR]\n\n"+
			"Detaches the BPF programs the agent left pinned so that restarts lose no bind,\n"+
			"and frees their maps with any events still unread in them. Run it after\n"+
			"stopping the agent for good (an uninstall); a running agent keeps capturing\n"+
			"until it exits.\n\n%s", fs.FlagUsages())
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	target := *dir
	if target == "" {
		cfg, err := config.Load(*path, os.Environ(), nil)
		if err != nil {
			return err
		}
		target = cfg.Capture.PinDir
	}
	if target == "" {
		return &usageError{err: fmt.Errorf("no pin directory: the configuration pins nothing and --pin-dir is empty"), usage: fs.FlagUsages()}
	}
	if err := bpf.RemovePins(target); err != nil {
		return err
	}
	fmt.Printf("removed the pins under %s\n", target)
	return nil
}
