package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"path"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	auditconfig "github.com/bindwatch/bindwatch/audit/config"
	"github.com/bindwatch/bindwatch/audit/record"
	"github.com/bindwatch/bindwatch/audit/state"
	"github.com/bindwatch/bindwatch/audit/stream"
)

// fleetFlags select the fleet's listeners.
type fleetFlags struct {
	brokers, config, topic, registry, host, exposure string
	port                                             int
}

func (f fleetFlags) keep(l *state.Listener) bool {
	if f.host != "" {
		a, _ := path.Match(f.host, l.Host)
		b, _ := path.Match(f.host, l.HostID)
		if !a && !b {
			return false
		}
	}
	if f.port != 0 && int(l.Port) != f.port {
		return false
	}
	return f.exposure == "" || l.Exposure == f.exposure
}

// fleetListeners prints the listeners the audit keeps in its compacted
// topic.
func fleetListeners(f fleetFlags, asJSON bool) error {
	if f.host != "" {
		if _, err := path.Match(f.host, ""); err != nil {
			return fmt.Errorf("--host %q: %w", f.host, err)
		}
	}
	cfg, err := auditconfig.Load(f.config)
	if err != nil {
		return err
	}
	if f.brokers != "" {
		cfg.Brokers = strings.Split(f.brokers, ",")
	}
	if f.topic != "" {
		cfg.StateTopic = f.topic
	}
	if f.registry != "" {
		cfg.RegistryURL = f.registry
	}
	dialer, err := cfg.Dialer(os.Environ())
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	ls, err := stream.ReadListeners(ctx, dialer, cfg.Brokers, cfg.StateTopic, cfg.RegistryURL)
	if err != nil {
		return err
	}
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	enc := json.NewEncoder(out)
	tw := tabwriter.NewWriter(out, 0, 8, 1, ' ', 0)
	if !asJSON {
		fmt.Fprintln(tw, "HOST\tPROTO\tADDR\tPORT\tEXPOSURE\tNETNS\tCONTAINER\tWORKLOAD\tPID\tUID\tCOMM\tEXE\tSINCE")
	}
	for _, l := range ls {
		if !f.keep(l) {
			continue
		}
		if asJSON {
			if err := enc.Encode(fleetJSON(l)); err != nil {
				return err
			}
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%d\t%s\t%s\t%d\t%d\t%s\t%s\t%s\n", l.Host, l.Protocol, l.Addr, l.Port, l.Exposure,
			l.Key.NetNS, orDash(shortID(l.ContainerID)), workloadCell(record.WorkloadOut(l.Workload), l.CgroupOwnerUID),
			l.PID, l.UID, l.Comm, orDash(l.Exe), l.Since.UTC().Format(time.RFC3339))
	}
	if !asJSON {
		return tw.Flush()
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func fleetJSON(l *state.Listener) map[string]any {
	m := map[string]any{
		"host": l.Host, "host_id": l.HostID, "boot_id": l.BootID, "netns_id": l.Key.NetNS, "cookie": l.Key.Cookie,
		"protocol": l.Protocol, "family": l.Family, "addr": l.Addr, "port": l.Port, "exposure": l.Exposure,
		"host_netns": l.HostNetNS, "pid": l.PID, "uid": l.UID, "comm": l.Comm, "exe": l.Exe,
		"container_id": l.ContainerID, "container_runtime": l.Runtime, "cgroup_path": l.CgroupPath,
		"cgroup_owner_uid": l.CgroupOwnerUID, "since": l.Since.UTC().Format(time.RFC3339Nano),
	}
	addWorkload(m, record.WorkloadOut(l.Workload))
	return m
}
