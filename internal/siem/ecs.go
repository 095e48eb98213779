package siem

import (
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// ECSVersion is the ECS release the mapping follows
// (testdata/ecs-8.17.0-fields.txt holds its fields).
const ECSVersion = "8.17.0"

// ECSPrefix is where fields ECS has no place for go, under their Avro names.
const ECSPrefix = "bindwatch"

// ecsEventFields are the BindEvent fields the ECS document maps to ECS
// fields; every other one goes under ECSPrefix.
var ecsEventFields = setOf("host", "host_id", "boot_id", "seq", "time", "pid", "tid", "ppid", "uid", "gid", "comm", "exe",
	"container_id", "container_runtime", "container_name", "image", "image_digest", "pod_name", "pod_namespace", "pod_uid", "pod_labels",
	"protocol", "family", "addr", "port", "error", "kind")

// ecsFindingFields are the Finding fields mapped to ECS fields.
var ecsFindingFields = setOf("host", "host_id", "boot_id", "time", "first_seen", "pid", "uid", "comm", "exe",
	"container_id", "container_name", "image", "image_digest", "pod_name", "pod_namespace", "pod_uid", "pod_labels",
	"protocol", "addr", "port", "rule", "kind", "reason", "detail", "state")

// ECSEvent is a BindEvent record as an ECS document.
func ECSEvent(f Fields) map[string]any {
	doc := map[string]any{}
	kind := f.kind()
	put(doc, "ecs.version", ECSVersion)
	if t, ok := f.time("time"); ok {
		put(doc, "@timestamp", t.Format(timeLayout))
	}
	cat, typ := ecsEventClass(kind)
	ek := "event"
	switch kind {
	case "snapshot":
		ek = "state" // what listens, found by an inventory: not something that happened now
	case "heartbeat":
		ek = "metric"
	}
	put(doc, "event.kind", ek)
	put(doc, "event.category", []string{cat})
	put(doc, "event.type", []string{typ})
	put(doc, "event.action", kind)
	put(doc, "event.module", "bindwatch")
	put(doc, "event.dataset", "bindwatch.events")
	if seq, ok := f.int("seq"); ok && seq > 0 { // suppressed records take no seq
		put(doc, "event.sequence", seq)
		put(doc, "event.id", f.str("host_id")+"/"+f.str("boot_id")+"/"+strconv.FormatInt(seq, 10))
	}
	ecsHost(doc, f)
	mapped := ecsEventFields
	if cat != "network" {
		// About the agent, not a socket: what these records say of a
		// process or user (suppressed: uid) stays under the prefix.
		mapped = without(mapped, socketFields...)
		f = f.withoutZeros(socketFields...)
	}
	if cat == "network" {
		ecsProcess(doc, f)
		ecsEndpoint(doc, f)
		if e, ok := f.int("error"); ok {
			if e == 0 {
				put(doc, "event.outcome", "success")
			} else {
				put(doc, "event.outcome", "failure")
				put(doc, "error.code", unix.ErrnoName(syscall.Errno(e)))
				put(doc, "error.message", syscall.Errno(e).Error())
			}
		}
	}
	put(doc, ECSPrefix, custom(f, mapped))
	return doc
}

// socketFields are an event's fields about its socket and process, mapped
// only for the kinds about a socket.
var socketFields = []string{"pid", "tid", "ppid", "uid", "gid", "comm", "exe", "container_id", "container_runtime", "container_name",
	"image", "image_digest", "pod_name", "pod_namespace", "pod_uid", "pod_labels", "protocol", "family", "addr", "port", "error"}

// ecsEventClass is a kind's event.category and event.type.
func ecsEventClass(kind string) (category, typ string) {
	switch kind {
	case "bind", "listen":
		return "network", "start"
	case "close":
		return "network", "end"
	case "snapshot":
		return "network", "info"
	case "stop":
		return "host", "end"
	}
	// snapshot_end, suppressed, heartbeat, host_key, seal, key_rotation:
	// about the agent on the host, not a socket.
	return "host", "info"
}

// ECSFinding is a Finding record as an ECS alert.
func ECSFinding(f Fields) map[string]any {
	doc := map[string]any{}
	put(doc, "ecs.version", ECSVersion)
	t, _ := f.time("time")
	put(doc, "@timestamp", t.Format(timeLayout))
	put(doc, "event.kind", "alert")
	cat := []string{"host"}
	if k := f.str("kind"); k == "listener" || k == "require" || k == "" {
		cat = []string{"network", "intrusion_detection"}
	}
	put(doc, "event.category", cat)
	put(doc, "event.type", []string{"info"})
	put(doc, "event.action", "finding-"+f.str("state"))
	put(doc, "event.module", "bindwatch")
	put(doc, "event.dataset", "bindwatch.findings")
	if seq, ok := f.int("seq"); ok {
		put(doc, "event.id", f.str("finding_id")+"/"+f.str("boot_id")+"/"+strconv.FormatInt(seq, 10))
	}
	put(doc, "event.reason", f.str("reason"))
	sev, _ := Severity(f)
	put(doc, "event.severity", int64(sev))
	if first, ok := f.time("first_seen"); ok {
		put(doc, "event.start", first.Format(timeLayout))
	}
	if f.str("state") == "resolved" {
		put(doc, "event.end", t.Format(timeLayout))
	}
	msg := f.str("detail")
	if msg == "" {
		msg = title(f)
	}
	put(doc, "message", msg)
	put(doc, "rule.name", f.str("rule"))
	put(doc, "rule.category", f.str("kind"))
	put(doc, "rule.ruleset", "bindwatch audit policy")
	ecsHost(doc, f)
	mapped := ecsFindingFields
	if f.str("protocol") != "" {
		ecsProcess(doc, f)
		ecsEndpoint(doc, f)
	} else {
		// Not about a listener: what it says of a user (coverage:
		// suppressed) stays under the prefix.
		mapped = without(mapped, listenerFields...)
		f = f.withoutZeros(listenerFields...)
	}
	put(doc, ECSPrefix, custom(f, mapped))
	return doc
}

func ecsHost(doc map[string]any, f Fields) {
	put(doc, "host.name", f.str("host"))
	put(doc, "host.id", f.str("host_id"))
	put(doc, "host.boot.id", f.str("boot_id"))
}

func ecsProcess(doc map[string]any, f Fields) {
	if pid, ok := f.int("pid"); ok && pid > 0 {
		put(doc, "process.pid", pid)
	}
	if tid, ok := f.int("tid"); ok && tid > 0 {
		put(doc, "process.thread.id", tid)
	}
	if ppid, ok := f.int("ppid"); ok && ppid > 0 {
		put(doc, "process.parent.pid", ppid)
	}
	put(doc, "process.name", f.str("comm"))
	put(doc, "process.executable", f.str("exe"))
	if uid, ok := f.int("uid"); ok {
		put(doc, "process.user.id", strconv.FormatInt(uid, 10))
	}
	if gid, ok := f.int("gid"); ok {
		put(doc, "process.group.id", strconv.FormatInt(gid, 10))
	}
	put(doc, "container.id", f.str("container_id"))
	put(doc, "container.runtime", f.str("container_runtime"))
	put(doc, "container.name", f.str("container_name"))
	put(doc, "container.image.name", f.str("image"))
	if d := f.str("image_digest"); d != "" {
		put(doc, "container.image.hash.all", []string{d})
	}
	if pod := f.str("pod_name"); pod != "" {
		put(doc, "orchestrator.type", "kubernetes")
		put(doc, "orchestrator.namespace", f.str("pod_namespace"))
		put(doc, "orchestrator.resource.type", "pod")
		put(doc, "orchestrator.resource.name", pod)
		put(doc, "orchestrator.resource.id", f.str("pod_uid"))
		put(doc, "orchestrator.resource.label", podLabels(f.labels("pod_labels")))
	}
}

// ecsEndpoint writes the bound endpoint as the destination: a socket bound
// or listening on an address and port is where traffic to that endpoint
// arrives, whoever sends it.
func ecsEndpoint(doc map[string]any, f Fields) {
	addr := f.str("addr")
	put(doc, "destination.address", addr)
	if validIP(addr) {
		put(doc, "destination.ip", addr)
	}
	if port, ok := f.int("port"); ok {
		put(doc, "destination.port", port)
	}
	if name, iana, ok := transport(f.str("protocol")); ok {
		put(doc, "network.transport", name)
		put(doc, "network.iana_number", strconv.Itoa(iana))
	}
	switch ipVersion(f.str("family"), addr) {
	case 4:
		put(doc, "network.type", "ipv4")
	case 6:
		put(doc, "network.type", "ipv6")
	}
}

// listenerFields are a finding's fields about its listener, mapped only
// when it has one.
var listenerFields = []string{"pid", "uid", "comm", "exe", "container_id", "container_name", "image", "image_digest",
	"pod_name", "pod_namespace", "pod_uid", "pod_labels", "addr", "port"}

func without(set map[string]bool, names ...string) map[string]bool {
	out := make(map[string]bool, len(set))
	for k := range set {
		out[k] = true
	}
	for _, n := range names {
		delete(out, n)
	}
	return out
}

func setOf(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}
