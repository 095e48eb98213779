package siem

import (
	"math"
	"path"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// OCSFVersion is the OCSF release the mapping follows
// (testdata/ocsf-1.8.0.txt holds what it uses of it).
const OCSFVersion = "1.8.0"

// OCSF class and category ids.
const (
	networkCategory       = 4
	networkActivityClass  = 4001
	findingsCategory      = 2
	detectionFindingClass = 2004
	activityOther         = 99
	severityInformational = 1
	networkActivityClose  = 2
	networkActivityListen = 7
	findingActivityCreate = 1
	findingActivityUpdate = 2
	findingActivityClose  = 3
	findingStatusNew      = 1
	findingStatusResolved = 4
	directionUnknown      = 0
	directionInbound      = 1
	analyticRule          = 1
	resourceRoleTarget    = 1
	fileRegular           = 1
	deviceTypeUnknown     = 0
	statusSuccess         = 1
	statusFailure         = 2
)

// ocsfEventFields are the BindEvent fields the Network Activity event maps.
var ocsfEventFields = setOf("host", "host_id", "boot_id", "seq", "time", "pid", "tid", "ppid", "uid", "comm", "exe",
	"container_id", "container_runtime", "container_name", "image", "image_digest", "pod_uid",
	"protocol", "family", "addr", "port", "bound_if_name", "error", "kind")

// ocsfFindingFields are the Finding fields the Detection Finding maps.
var ocsfFindingFields = setOf("finding_id", "state", "rule", "host", "host_id", "boot_id", "time", "first_seen", "pid", "uid", "comm", "exe",
	"container_id", "container_name", "image", "image_digest", "pod_uid", "pod_namespace", "pod_labels",
	"protocol", "addr", "port", "kind", "detail")

// networkActivities are the kinds a Network Activity event says, with
// its activity id and name. The other kinds are about the agent, not a
// socket: OCSFEvent does not map them.
var networkActivities = map[string]struct {
	id   int
	name string
}{
	"bind":     {activityOther, "Bind"}, // no connection is opened: Open would say one was
	"listen":   {networkActivityListen, "Listen"},
	"snapshot": {networkActivityListen, "Listen"}, // a socket the inventory found listening
	"close":    {networkActivityClose, "Close"},
}

// OCSFEvent is a BindEvent record as an OCSF Network Activity event; false
// for the kinds that are not about a socket (snapshot_end, heartbeat,
// stop, suppressed and the integrity kinds).
func OCSFEvent(f Fields) (map[string]any, bool) {
	kind := f.kind()
	act, ok := networkActivities[kind]
	if !ok {
		return nil, false
	}
	ev := ocsfBase(f, networkCategory, "Network Activity", networkActivityClass, "Network Activity", act.id, act.name)
	ev["severity_id"], ev["severity"] = severityInformational, severityNames[severityInformational]
	md := ev["metadata"].(map[string]any)
	if seq, ok := f.int("seq"); ok {
		md["uid"] = f.str("host_id") + "/" + f.str("boot_id") + "/" + strconv.FormatInt(seq, 10)
		if seq <= math.MaxInt32 {
			md["sequence"] = seq
		}
	}
	if e, ok := f.int("error"); ok {
		if e == 0 {
			ev["status_id"], ev["status"] = statusSuccess, "Success"
		} else {
			ev["status_id"], ev["status"] = statusFailure, "Failure"
			ev["status_code"], ev["status_detail"] = unix.ErrnoName(syscall.Errno(e)), syscall.Errno(e).Error()
		}
	}
	ocsfActor(ev, f)
	dst := map[string]any{}
	if addr := f.str("addr"); validIP(addr) {
		dst["ip"] = addr
	}
	if port, ok := f.int("port"); ok {
		dst["port"] = port
	}
	put(dst, "interface_name", f.str("bound_if_name"))
	ev["dst_endpoint"] = dst
	conn := map[string]any{"direction_id": directionUnknown, "direction": "Unknown"}
	if kind == "listen" || kind == "snapshot" {
		conn["direction_id"], conn["direction"] = directionInbound, "Inbound"
	}
	if name, iana, ok := transport(f.str("protocol")); ok {
		put(conn, "protocol_name", name)
		conn["protocol_num"] = iana
	}
	if v := ipVersion(f.str("family"), f.str("addr")); v != 0 {
		conn["protocol_ver_id"] = v
	}
	ev["connection_info"] = conn
	put(ev, "unmapped", custom(f, ocsfEventFields))
	return ev, true
}

// OCSFFinding is a Finding record as an OCSF Detection Finding.
func OCSFFinding(f Fields) map[string]any {
	act, name := findingActivityCreate, "Create"
	t, _ := f.time("time")
	first, haveFirst := f.time("first_seen")
	switch {
	case f.str("state") == "resolved":
		act, name = findingActivityClose, "Close"
	case f.str("kind") == "coverage" && haveFirst && t.After(first):
		// Published again while open: its range or count grew.
		act, name = findingActivityUpdate, "Update"
	}
	ev := ocsfBase(f, findingsCategory, "Findings", detectionFindingClass, "Detection Finding", act, name)
	sev, sevName := Severity(f)
	ev["severity_id"], ev["severity"] = sev, sevName
	if f.str("state") == "resolved" {
		ev["status_id"], ev["status"] = findingStatusResolved, "Resolved"
		ev["end_time"] = t.UnixMilli()
		ev["is_alert"] = false
	} else {
		ev["status_id"], ev["status"] = findingStatusNew, "New"
		ev["is_alert"] = true
	}
	if seq, ok := f.int("seq"); ok {
		ev["metadata"].(map[string]any)["uid"] = f.str("finding_id") + "/" + f.str("boot_id") + "/" + strconv.FormatInt(seq, 10)
	}
	msg := f.str("detail")
	if msg == "" {
		msg = title(f)
	}
	ev["message"] = msg
	analytic := map[string]any{"type_id": analyticRule, "type": "Rule", "name": "bindwatch audit policy: " + f.str("kind")}
	put(analytic, "uid", f.str("rule"))
	info := map[string]any{"uid": f.str("finding_id"), "title": title(f), "types": []string{f.str("kind")}, "analytic": analytic,
		"last_seen_time": t.UnixMilli()}
	put(info, "desc", f.str("detail"))
	if haveFirst {
		info["first_seen_time"] = first.UnixMilli()
		ev["start_time"] = first.UnixMilli()
	}
	ev["finding_info"] = info
	res := map[string]any{"role_id": resourceRoleTarget, "hostname": f.str("host")}
	if f.str("protocol") != "" {
		res["type"], res["name"] = "listener", f.str("protocol")+" "+endpoint(f.str("addr"), f)
		port, _ := f.int("port")
		res["uid"] = f.str("host_id") + "/" + f.str("protocol") + "/" + f.str("addr") + "/" + strconv.FormatInt(port, 10)
		if validIP(f.str("addr")) {
			res["ip"] = f.str("addr")
		}
		put(res, "namespace", f.str("pod_namespace"))
		put(res, "labels", podLabels(f.labels("pod_labels")))
		ocsfActor(ev, f)
	} else {
		res["type"], res["name"], res["uid"] = "host", f.str("host"), f.str("host_id")
	}
	ev["resources"] = []any{res}
	mapped := ocsfFindingFields
	if f.str("protocol") == "" {
		mapped = without(mapped, listenerFields...)
		f = f.withoutZeros(listenerFields...)
	}
	put(ev, "unmapped", custom(f, mapped))
	return ev
}

// ocsfBase is what every event carries: classification, time, metadata
// and the device (the host).
func ocsfBase(f Fields, category int, categoryName string, class int, className string, activity int, activityName string) map[string]any {
	t, _ := f.time("time")
	ev := map[string]any{
		"category_uid": category, "category_name": categoryName,
		"class_uid": class, "class_name": className,
		"activity_id": activity, "activity_name": activityName,
		"type_uid": int64(class)*100 + int64(activity), "type_name": className + ": " + activityName,
		"time": t.UnixMilli(),
		"metadata": map[string]any{
			"version":       OCSFVersion,
			"product":       map[string]any{"name": "bindwatch", "vendor_name": "bindwatch"},
			"original_time": t.Format(timeLayout), // time is in milliseconds; the record has microseconds
		},
	}
	dev := map[string]any{"type_id": deviceTypeUnknown, "type": "Unknown"}
	put(dev, "hostname", f.str("host"))
	put(dev, "uid", f.str("host_id"))
	put(dev, "boot_uid", f.str("boot_id"))
	ev["device"] = dev
	return ev
}

// ocsfActor writes the process behind the socket as the actor, with its
// executable, user, parent and container.
func ocsfActor(ev map[string]any, f Fields) {
	pid, ok := f.int("pid")
	if !ok || pid <= 0 {
		return
	}
	p := map[string]any{"pid": pid}
	if tid, ok := f.int("tid"); ok && tid > 0 {
		p["tid"] = tid
	}
	put(p, "name", f.str("comm"))
	if exe := f.str("exe"); exe != "" {
		p["file"] = map[string]any{"name": path.Base(exe), "path": exe, "type_id": fileRegular, "type": "Regular File"}
	}
	if uid, ok := f.int("uid"); ok {
		p["user"] = map[string]any{"uid": strconv.FormatInt(uid, 10)}
	}
	if ppid, ok := f.int("ppid"); ok && ppid > 0 {
		p["parent_process"] = map[string]any{"pid": ppid}
	}
	c := map[string]any{}
	put(c, "uid", f.str("container_id"))
	put(c, "name", f.str("container_name"))
	put(c, "runtime", f.str("container_runtime"))
	if img := f.str("image"); img != "" || f.str("image_digest") != "" {
		im := map[string]any{}
		put(im, "name", img)
		// image.uid is required: the digest when known, else the reference.
		im["uid"] = img
		put(im, "uid", f.str("image_digest"))
		c["image"] = im
	}
	if f.str("pod_uid") != "" {
		c["orchestrator"] = "kubernetes"
		c["pod_uuid"] = f.str("pod_uid")
	}
	if c["uid"] != nil || c["name"] != nil {
		p["container"] = c
	}
	ev["actor"] = map[string]any{"process": p}
}
