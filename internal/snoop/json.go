package snoop

import (
	"io"
	"strconv"
	"time"

	"github.com/bindwatch/bindwatch/bpf"
	"github.com/bindwatch/bindwatch/internal/safetext"
)

// JSONWriter writes one JSON object per event, every captured field, with
// names that match the Avro schema's where both have the field.
type JSONWriter struct {
	w io.Writer
	// WallTime converts the kernel's boot-relative time; nil leaves "time" out.
	WallTime func(bootNS uint64) time.Time
	buf      []byte
}

// NewJSONWriter returns a JSON-lines writer.
func NewJSONWriter(w io.Writer, wallTime func(uint64) time.Time) *JSONWriter {
	return &JSONWriter{w: w, WallTime: wallTime}
}

// Write prints ev as one line. The object is built by hand: no reflection, one
// reused buffer.
func (j *JSONWriter) Write(ev *bpf.Event) error {
	b := j.buf[:0]
	b = append(b, '{')
	if j.WallTime != nil {
		b = append(b, `"time":"`...)
		b = j.WallTime(ev.BootNS).UTC().AppendFormat(b, time.RFC3339Nano)
		b = append(b, `",`...)
	}
	b = append(b, `"kind":"`...)
	b = append(b, ev.Kind.String()...)
	b = append(b, '"', ',')
	b = uintField(b, "boot_ns", ev.BootNS, false)
	b = uintField(b, "seq", ev.Seq, true)
	b = uintField(b, "pid", uint64(ev.PID), true)
	b = uintField(b, "tid", uint64(ev.TID), true)
	b = uintField(b, "ppid", uint64(ev.PPID), true)
	b = uintField(b, "uid", uint64(ev.UID), true)
	b = uintField(b, "gid", uint64(ev.GID), true)
	b = stringField(b, "comm", ev.CommString())
	b = uintField(b, "cgroup_id", ev.CgroupID, true)
	b = uintField(b, "mntns_id", uint64(ev.MntNS), true)
	b = uintField(b, "netns_id", uint64(ev.NetNS), true)
	b = stringField(b, "protocol", bpf.ProtocolName(ev.Protocol))
	b = uintField(b, "protocol_number", uint64(ev.Protocol), true)
	b = stringField(b, "family", bpf.FamilyName(ev.Family))
	b = stringField(b, "addr", addrString(ev.EffectiveAddr()))
	b = uintField(b, "port", uint64(ev.Port), true)
	b = stringField(b, "requested_family", bpf.FamilyName(ev.ReqFamily))
	if ra := ev.RequestedAddr(); ra.IsValid() {
		b = stringField(b, "requested_addr", ra.String())
		b = uintField(b, "requested_port", uint64(ev.ReqPort), true)
	} else { // the caller's sockaddr could not be read
		b = append(b, `,"requested_addr":null,"requested_port":null`...)
	}
	b = stringField(b, "opts", ev.Opts.String())
	b = boolField(b, "freebind", ev.Opts.Has(bpf.OptFreebind))
	b = boolField(b, "transparent", ev.Opts.Has(bpf.OptTransparent))
	b = boolField(b, "bind_address_no_port", ev.Opts.Has(bpf.OptBindAddressNoPort))
	b = boolField(b, "reuseaddr", ev.Opts.Has(bpf.OptReuseAddr))
	b = boolField(b, "reuseport", ev.Opts.Has(bpf.OptReusePort))
	b = boolField(b, "v6only", ev.Opts.Has(bpf.OptV6Only))
	b = uintField(b, "reuse", uint64(ev.Reuse), true)
	b = uintField(b, "bound_if", uint64(ev.BoundIf), true)
	b = append(b, `,"ret":`...)
	b = strconv.AppendInt(b, int64(ev.Ret), 10)
	b = uintField(b, "error", uint64(ev.Errno()), true)
	b = stringField(b, "error_name", errorName(ev))
	b = uintField(b, "cookie", ev.Cookie, true)
	b = uintField(b, "backlog", uint64(ev.Backlog), true)
	b = uintField(b, "listen_duration_ns", ev.ListenNS, true)
	b = append(b, '}', '\n')
	j.buf = b
	_, err := j.w.Write(b)
	return err
}

func errorName(ev *bpf.Event) string {
	if ev.Ret == 0 {
		return ""
	}
	return bpf.ErrnoName(ev.Errno())
}

func uintField(b []byte, name string, v uint64, comma bool) []byte {
	if comma {
		b = append(b, ',')
	}
	b = append(b, '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	return strconv.AppendUint(b, v, 10)
}

func boolField(b []byte, name string, v bool) []byte {
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	return strconv.AppendBool(b, v)
}

// stringField appends a JSON string. Kernel text (comm is whatever bytes
// the thread set) is escaped by safetext first, the same text the Avro
// records carry; what is left to JSON is its own quote and backslash.
func stringField(b []byte, name, v string) []byte {
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, '"', ':', '"')
	v = safetext.Escape(v)
	for i := 0; i < len(v); i++ {
		switch c := v[i]; c {
		case '"', '\\':
			b = append(b, '\\', c)
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}
