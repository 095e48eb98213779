package bpf

import (
	"slices"
	"strings"
	"testing"
)

func TestParsePorts(t *testing.T) {
	tests := []struct {
		in      string
		want    []uint16
		wantErr string
	}{
		{in: "80", want: []uint16{80}},
		{in: "80,443, 8080", want: []uint16{80, 443, 8080}},
		{in: "65535", want: []uint16{65535}},
		{in: "", wantErr: `invalid port ""`},
		{in: "80,", wantErr: `invalid port ""`},
		{in: "0", wantErr: `invalid port "0"`},
		{in: "65536", wantErr: `invalid port "65536"`},
		{in: "http", wantErr: `invalid port "http" in "http": want a comma-separated list of ports 1-65535`},
		{in: "-1", wantErr: `invalid port "-1"`},
	}
	for _, tt := range tests {
		got, err := ParsePorts(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParsePorts(%q) = %v, %v; want error containing %q", tt.in, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("ParsePorts(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestFilterConfig(t *testing.T) {
	tests := []struct {
		name  string
		f     Filter
		mptcp bool
		want  bindwatchCaptureConfig
	}{
		{"zero reports every successful bind", Filter{}, false, bindwatchCaptureConfig{}},
		{"pid", Filter{PID: 7}, false, bindwatchCaptureConfig{Flags: filterPID, Pid: 7}},
		{"uid 0 is a filter", Filter{HasUID: true}, false, bindwatchCaptureConfig{Flags: filterUID}},
		{"uid without HasUID is ignored", Filter{UID: 5}, false, bindwatchCaptureConfig{}},
		{"ports", Filter{Ports: []uint16{80}}, false, bindwatchCaptureConfig{Flags: filterPorts}},
		{"maps and errors", Filter{CgroupMap: "/a", MntNSMap: "/b", Errors: true}, true,
			bindwatchCaptureConfig{Flags: filterCgroup | filterMntNS | captureErrors | mptcpHooked}},
	}
	for _, tt := range tests {
		tt.want.WakeupBytes, tt.want.Generation = 4096, 7
		if got := tt.f.config(tt.mptcp, bindwatchCaptureConfig{WakeupBytes: 4096, Generation: 7}); got != tt.want {
			t.Errorf("%s: config = %+v, want %+v", tt.name, got, tt.want)
		}
	}
}

func TestParseHook(t *testing.T) {
	for _, s := range []string{"auto", "fexit", "kprobe", "tracepoint"} {
		if h, err := ParseHook(s); err != nil || string(h) != s {
			t.Errorf("ParseHook(%q) = %q, %v", s, h, err)
		}
	}
	_, err := ParseHook("uprobe")
	if err == nil || err.Error() != `unknown hook "uprobe": want auto, fexit, kprobe, tracepoint` {
		t.Errorf("ParseHook(uprobe) = %v", err)
	}
	if got := HookAuto.candidates(); !slices.Equal(got, Hooks) {
		t.Errorf("auto tries %v, want %v", got, Hooks)
	}
}
