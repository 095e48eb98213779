package codec

import (
	"context"
	"encoding/json"
	"github.com/bindwatch/bindwatch/schemas/codec/codectest"
	"math"
	"strings"
	"testing"
	"time"
)

func TestJSONLine(t *testing.T) {
	enc, err := NewSingleObject([]byte(codectest.SchemaText(t, 1)))
	if err != nil {
		t.Fatal(err)
	}
	dec, err := NewDecoder("")
	if err != nil {
		t.Fatal(err)
	}
	const common = `"host":"node-7.example","host_id":"4c4c4544004d3510804cb3c04f4b3732",` +
		`"boot_id":"0e4f7c2a-9d1b-4c55-a0a8-2a6d7e0b91f3","seq":1099511627793,` +
		`"time":"2026-03-14T15:09:26.535897Z","pid":4242,"tid":4243,"ppid":1,"uid":1000,"gid":4294967294,` +
		`"comm":"nginx: wörker","cgroup_id":12345678901,`
	tests := []struct {
		name string
		msg  func() ([]byte, error)
		want string
	}{
		{"full", func() ([]byte, error) { return enc.Append(nil, codectest.FullEvent()) },
			`{` + common + `"container_id":"a3f1e5b2c4d6e8f0a1b3c5d7e9f1a3b5c7d9e1f3a5b7c9d1e3f5a7b9c1d3e5f7","container_runtime":"containerd",` +
				`"mntns_id":4026531841,"netns_id":4026531840,"protocol":"MPTCP","family":"AF_INET6","addr":"fd00::1","port":8443,` +
				`"requested_addr":"::","requested_port":0,"freebind":true,"transparent":false,"bind_address_no_port":true,` +
				`"reuseaddr":true,"reuseport":false,"v6only":true,"bound_if":3,"bound_if_name":"eth0","error":98}` + "\n"},
		{"nulls", func() ([]byte, error) { return enc.Append(nil, codectest.NullEvent()) },
			`{` + common + `"container_id":null,"container_runtime":null,` +
				`"mntns_id":4026531841,"netns_id":4026531840,"protocol":"MPTCP","family":"AF_INET6","addr":"fd00::1","port":8443,` +
				`"requested_addr":null,"requested_port":null,"freebind":true,"transparent":false,"bind_address_no_port":true,` +
				`"reuseaddr":true,"reuseport":false,"v6only":true,"bound_if":3,"bound_if_name":null,"error":98}` + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg, err := tt.msg()
			if err != nil {
				t.Fatal(err)
			}
			rec, err := dec.Decode(context.Background(), msg)
			if err != nil {
				t.Fatal(err)
			}
			line, err := rec.AppendJSONLine(nil)
			if err != nil {
				t.Fatal(err)
			}
			if string(line) != tt.want {
				t.Errorf("line\n got %s\nwant %s", line, tt.want)
			}
			if !json.Valid(line) {
				t.Errorf("not valid JSON: %s", line)
			}
			viaMarshal, err := json.Marshal(rec)
			if err != nil {
				t.Fatal(err)
			}
			if string(viaMarshal)+"\n" != string(line) {
				t.Errorf("json.Marshal(Record) = %s, differs from the line", viaMarshal)
			}
		})
	}
}

func TestJSONValues(t *testing.T) {
	berlin := time.FixedZone("CET", 3600)
	tests := []struct {
		name string
		v    any
		want string
	}{
		{"quotes and backslash", `a"b\c`, `"a\"b\\c"`},
		{"control characters", "a\nb\tc\x01\x7f", `"a\nb\tc\u0001\u007f"`},
		{"html characters stay", "<a&b>", `"<a&b>"`},
		{"invalid utf-8", "ok\xffok", `"ok\ufffdok"`},
		{"time in another zone prints UTC", time.Date(2026, 1, 2, 3, 4, 5, 6000, berlin), `"2026-01-02T02:04:05.000006Z"`},
		{"time on a whole second keeps six digits", time.Unix(0, 0), `"1970-01-01T00:00:00.000000Z"`},
		{"int32", int32(-5), `-5`},
		{"float", 1.5, `1.5`},
		{"float32", float32(0.1), `0.1`},
		{"NaN", math.NaN(), `"NaN"`},
		{"bytes", []byte{0, 1, 2}, `"AAEC"`},
		{"nested record", []Field{{"a", int64(1)}, {"b", nil}}, `{"a":1,"b":null}`},
		{"array", []any{"x", 2}, `["x",2]`},
		{"map sorted", map[string]any{"z": 1, "a": true}, `{"a":true,"z":1}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := appendValue(nil, tt.v)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
			if !json.Valid(got) {
				t.Errorf("%s is not valid JSON", got)
			}
		})
	}
	if _, err := appendFields(nil, []Field{{"c", struct{}{}}}); err == nil || !strings.Contains(err.Error(), "field c") {
		t.Errorf("unsupported value: error %v, want one naming field c", err)
	}
}
