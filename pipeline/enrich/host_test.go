package enrich

import (
	"os"
	"strings"
	"testing"

	"github.com/bindwatch/bindwatch/test/testenv"
)

func TestReadIdentity(t *testing.T) {
	tests := []struct {
		name     string
		root     string
		hostname string
		want     Identity
		wantErr  string // substring; "" means success
	}{
		{
			name:     "fixture host with override",
			root:     "testdata/host",
			hostname: "edge-17.example",
			want: Identity{
				Hostname: "edge-17.example",
				HostID:   "4c4c4544004a3610804bb4c04f4e3233",
				BootID:   "7c3a1f0e-2b5d-4e8a-9c6f-1d2e3f4a5b6c",
			},
		},
		{
			name:    "machine-id not yet initialized",
			root:    "testdata/host-uninitialized",
			wantErr: "testdata/host-uninitialized/etc/machine-id: machine id \"uninitialized\"",
		},
		{
			name:    "boot id without dashes",
			root:    "testdata/host-badboot",
			wantErr: "testdata/host-badboot/proc/sys/kernel/random/boot_id: boot id",
		},
		{
			name:    "missing machine-id names the file",
			root:    "testdata/nonexistent",
			wantErr: "testdata/nonexistent/etc/machine-id",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReadIdentity(tt.root, tt.root+"/proc", tt.hostname)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestReadIdentityKernelHostname(t *testing.T) {
	want, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	got, err := ReadIdentity("testdata/host", "testdata/host/proc", "")
	if err != nil {
		t.Fatal(err)
	}
	if got.Hostname != want || want == "" {
		t.Errorf("hostname %q, want the kernel's %q", got.Hostname, want)
	}
}

func TestParseMachineID(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"4c4c4544004a3610804bb4c04f4e3233\n", "4c4c4544004a3610804bb4c04f4e3233", true},
		{"4c4c4544004a3610804bb4c04f4e3233", "4c4c4544004a3610804bb4c04f4e3233", true},
		{"", "", false},
		{"\n", "", false},
		{"uninitialized\n", "", false},
		{"4C4C4544004A3610804BB4C04F4E3233\n", "", false},
		{"4c4c4544004a3610804bb4c04f4e323\n", "", false},
		{"4c4c4544-004a-3610-804b-b4c04f4e3233\n", "", false},
	}
	for _, tt := range tests {
		got, err := parseMachineID(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("parseMachineID(%q) = %q, %v; want %q, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestParseBootID(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"bf88809c-03fd-4558-b17e-c1736d362d5f\n", "bf88809c-03fd-4558-b17e-c1736d362d5f", true},
		{"bf88809c03fd4558b17ec1736d362d5f\n", "", false},
		{"bf88809c-03fd-4558-b17e-c1736d362d5\n", "", false},
		{"bf88809c-03fd-4558-b17e_c1736d362d5f\n", "", false},
		{"bf88809c-03fd-4558-b17e-c1736d362d5g\n", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		got, err := parseBootID(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("parseBootID(%q) = %q, %v; want %q, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

// The real files of this machine must parse: the fixtures are only as good
// as their likeness to them.
func TestReadIdentityThisHost(t *testing.T) {
	if _, err := os.Stat("/etc/machine-id"); err != nil {
		testenv.Unavailable(t, "needs /etc/machine-id: %v", err)
	}
	id, err := ReadIdentity("/", "/proc", "")
	if err != nil {
		t.Fatal(err)
	}
	if id.HostID == "" || id.BootID == "" || id.Hostname == "" {
		t.Errorf("incomplete identity %+v", id)
	}
}
