package main

import (
	"fmt"
	"log/slog"
	"os"

	"golang.org/x/sys/unix"
)

type mount struct {
	source, target, fstype string
	flags                  uintptr
	data                   string
}

// guestMounts are what the capture tests and the agent expect of a host;
// parents come before the mounts beneath them.
var guestMounts = []mount{
	{"proc", "/proc", "proc", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, ""},
	{"sysfs", "/sys", "sysfs", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, ""},
	{"tmpfs", "/tmp", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=1777"},
	{"tracefs", "/sys/kernel/tracing", "tracefs", 0, ""},
	{"debugfs", "/sys/kernel/debug", "debugfs", 0, ""},
	{"bpf", "/sys/fs/bpf", "bpf", 0, "mode=0700"},
	{"cgroup2", "/sys/fs/cgroup", "cgroup2", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, ""},
}

func mountAll(log *slog.Logger) error {
	for _, m := range guestMounts {
		if err := mountOne(m); err != nil {
			return err
		}
		log.Debug("mounted", "fstype", m.fstype, "target", m.target)
	}
	log.Info("mounted", "count", len(guestMounts)+1)
	return nil
}

func mountOne(m mount) error {
	if err := os.MkdirAll(m.target, 0o755); err != nil {
		return fmt.Errorf("creating mount point: %w", err)
	}
	if err := unix.Mount(m.source, m.target, m.fstype, m.flags, m.data); err != nil {
		return fmt.Errorf("mounting %s on %s: %w", m.fstype, m.target, err)
	}
	return nil
}
