package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/bindwatch/bindwatch/bpf"
	"github.com/bindwatch/bindwatch/pipeline/enrich"
	"github.com/bindwatch/bindwatch/pipeline/inventory"
	"github.com/bindwatch/bindwatch/schemas"
)

func listenersCommand() *cobra.Command {
	var asJSON bool
	var ff fleetFlags
	cmd := &cobra.Command{
		Use:   "listeners [-j]\nlisteners --brokers B [--topic T] [--host GLOB] [--port N] [--exposure E] [-j]",
		Short: "what listens on this host now (or, with --brokers, on the fleet)",
		Long: "What listens on this host now, in every network namespace: TCP, MPTCP and SCTP\n" +
			"listeners and UDP sockets bound to a port, like ss -tulpn, with the container,\n" +
			"executable and exposure of each and every process holding it.\n" +
			"With --brokers (or --config): the fleet's listeners, as bindwatch audit keeps them.",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runListeners(cmd, ff, asJSON) },
	}
	fs := cmd.Flags()
	fs.BoolVarP(&asJSON, "json", "j", false, "print one JSON object per socket, every field")
	fs.StringVar(&ff.brokers, "brokers", "", "fleet mode: read the fleet's listeners from the compacted listeners topic on these brokers")
	fs.StringVar(&ff.config, "config", "", "fleet mode: take brokers, TLS and SASL from this audit config")
	fs.StringVar(&ff.topic, "topic", "", "fleet mode: the listeners topic (default: the config's audit.state_topic, bindwatch.listeners)")
	fs.StringVar(&ff.host, "host", "", "fleet mode: only hosts whose name (or id) matches this glob")
	fs.IntVar(&ff.port, "port", 0, "fleet mode: only this port")
	fs.StringVar(&ff.exposure, "exposure", "", "fleet mode: only this exposure (loopback, link_local, specific, wildcard)")
	completeWords(cmd, "exposure", "loopback", "link_local", "specific", "wildcard")
	return cmd
}

// runListeners prints what listens on this host now: one pass of the
// agent's inventory, with containers, executables and every holder.
func runListeners(cmd *cobra.Command, ff fleetFlags, asJSON bool) error {
	if ff.brokers != "" || ff.config != "" {
		return fleetListeners(ff, asJSON)
	}
	if ff.topic != "" || ff.host != "" || ff.port != 0 || ff.exposure != "" {
		return usageErr(cmd, errors.New("--topic, --host, --port and --exposure read the fleet: give --brokers"))
	}
	var src inventory.Source = inventory.ProcSource{Root: "/proc"}
	if probe, err := bpf.LoadInventory(); err == nil {
		defer probe.Close()
		src = inventory.IterSource{Probe: probe}
	} else {
		fmt.Fprintf(os.Stderr, "bindwatch listeners: %v; reading /proc instead\n", err)
	}
	snap, err := inventory.Take(src, unnumbered{}, bpf.Filter{}, time.Now())
	if err != nil {
		return err
	}
	enr, err := enrich.New(enrich.Config{Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		return err
	}
	recs := snap.Records[:len(snap.Records)-1] // without snapshot_end
	for i := range recs {
		enr.CompleteSnapshot(&recs[i])
	}
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	if asJSON {
		enc := json.NewEncoder(out)
		for i := range recs {
			if err := enc.Encode(listenerJSON(&recs[i])); err != nil {
				return err
			}
		}
	} else {
		writeListenerTable(out, recs)
	}
	for _, why := range snap.Incomplete {
		fmt.Fprintf(os.Stderr, "bindwatch listeners: incomplete: %s\n", why)
	}
	return nil
}

// unnumbered takes no sequence numbers: nothing is published.
type unnumbered struct{}

func (unnumbered) ReserveSeq(uint64) (uint64, error) { return 0, nil }

func writeListenerTable(out *bufio.Writer, recs []schemas.BindEvent) {
	tw := tabwriter.NewWriter(out, 0, 8, 1, ' ', 0)
	fmt.Fprintln(tw, "PROTO\tADDR\tPORT\tEXPOSURE\tNETNS\tBACKLOG\tCONTAINER\tWORKLOAD\tPROCESSES")
	for i := range recs {
		r := &recs[i]
		netns := fmt.Sprint(r.NetNSID)
		if r.HostNetNS != nil && *r.HostNetNS {
			netns = "host"
		}
		var procs []string
		for _, h := range r.Holders {
			exe := h.Comm
			if h.Exe != nil {
				exe = *h.Exe
			}
			procs = append(procs, fmt.Sprintf("pid=%d,fd=%d,uid=%d,%s", h.PID, h.FD, h.UID, exe))
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%d\t%s\t%s\t%s\n", r.Protocol, r.Addr, r.Port, deref(r.Exposure), netns,
			r.Backlog, shortID(deref(r.ContainerID)), workloadCell(eventWorkload(r), r.CgroupOwnerUID), strings.Join(procs, " "))
	}
	tw.Flush()
}

func deref(s *string) string {
	if s == nil {
		return "-"
	}
	return *s
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// listenerJSON is a socket as -j prints it.
func listenerJSON(r *schemas.BindEvent) map[string]any {
	holders := make([]map[string]any, 0, len(r.Holders))
	for _, h := range r.Holders {
		holders = append(holders, map[string]any{"pid": h.PID, "fd": h.FD, "uid": h.UID, "comm": h.Comm,
			"exe": h.Exe, "cgroup_id": h.CgroupID, "container_id": h.ContainerID})
	}
	m := map[string]any{
		"protocol": r.Protocol, "family": r.Family, "addr": r.Addr, "port": r.Port, "cookie": uint64(r.Cookie),
		"exposure": r.Exposure, "host_netns": r.HostNetNS, "netns_id": r.NetNSID, "backlog": r.Backlog,
		"port_explicit": r.PortExplicit, "bound_if": r.BoundIf, "reuseaddr": r.ReuseAddr, "reuseport": r.ReusePort,
		"v6only": r.V6Only, "freebind": r.Freebind, "transparent": r.Transparent,
		"container_id": r.ContainerID, "container_runtime": r.ContainerRuntime, "exe": r.Exe,
		"cgroup_path": r.CgroupPath, "cgroup_owner_uid": r.CgroupOwnerUID,
		"pid": r.PID, "uid": r.UID, "comm": r.Comm, "holders": holders,
	}
	addWorkload(m, eventWorkload(r))
	return m
}

// eventWorkload is a record's workload fields, as the audit's records
// group them.
func eventWorkload(r *schemas.BindEvent) schemas.Workload {
	w := schemas.Workload{
		Unit: r.Unit, ContainerName: r.ContainerName, Image: r.Image, ImageDigest: r.ImageDigest,
		PodName: r.PodName, PodNamespace: r.PodNamespace, PodUID: r.PodUID, PodLabels: r.PodLabels,
		WorkloadSource: r.WorkloadSource,
	}
	if w.PodLabels == nil {
		w.PodLabels = map[string]string{}
	}
	return w
}

// addWorkload puts a workload's fields in a -j object, with the names
// and nulls of the schemas.
func addWorkload(m map[string]any, w schemas.Workload) {
	m["unit"], m["container_name"], m["image"], m["image_digest"] = w.Unit, w.ContainerName, w.Image, w.ImageDigest
	m["pod_name"], m["pod_namespace"], m["pod_uid"], m["pod_labels"] = w.PodName, w.PodNamespace, w.PodUID, w.PodLabels
	m["workload_source"] = w.WorkloadSource
}

// workloadCell is the WORKLOAD column: a host process's unit, or a
// container's image and pod namespace (ns=). Where a user controls the
// cgroup (owner set) they are that user's words, which the policy
// believes only with trust: user: the cell says whose (claimed-by-uid=).
func workloadCell(w schemas.Workload, owner *int64) string {
	var parts []string
	if w.Unit != nil {
		parts = append(parts, "unit="+*w.Unit)
	}
	if w.Image != nil {
		parts = append(parts, "image="+*w.Image)
	}
	if w.PodNamespace != nil {
		parts = append(parts, "ns="+*w.PodNamespace)
	}
	if len(parts) == 0 {
		return "-"
	}
	if owner != nil {
		parts = append(parts, fmt.Sprintf("claimed-by-uid=%d", *owner))
	}
	return strings.Join(parts, ",")
}
