package enrich

import (
	"errors"
	"os"
	"reflect"
	"testing"
	"time"

	"github.com/bindwatch/bindwatch/test/testenv"
)

func TestIfnameParsers(t *testing.T) {
	tests := []struct {
		name  string
		parse func(string) []ifaceName
		in    string
		want  []ifaceName
	}{
		{"igmp6 fixture: every device, down tap0 too", parseIgmp6, testenv.ReadFile(t, "testdata/proc/4242/net/igmp6"),
			[]ifaceName{{1, "lo"}, {2, "veth1"}, {3, "veth0"}, {4, "br0"}, {5, "tap0"}}},
		{"if_inet6 fixture: devices with addresses", parseIfInet6, testenv.ReadFile(t, "testdata/proc/4242/net/if_inet6"),
			[]ifaceName{{1, "lo"}, {3, "veth0"}, {2, "veth1"}, {4, "br0"}}},
		{"igmp fixture: up devices", parseIgmp, testenv.ReadFile(t, "testdata/proc/4242/net/igmp"),
			[]ifaceName{{1, "lo"}, {2, "veth1"}, {3, "veth0"}, {4, "br0"}}},
		{"igmp, IPv6-less host", parseIgmp, testenv.ReadFile(t, "testdata/proc/4343/net/igmp"),
			[]ifaceName{{1, "lo"}, {12, "eth0"}}},
		{"if_inet6 index is hex", parseIfInet6,
			"fe80000000000000000000fffe000001 1a 40 20 80 vethA\nfe80000000000000000000fffe000002 1a 40 20 80 vethA\n",
			[]ifaceName{{26, "vethA"}}},
		{"igmp6 index is decimal", parseIgmp6,
			"26   vethA           ff020000000000000000000000000001     1 0000000C 0\n",
			[]ifaceName{{26, "vethA"}}},
		{"garbage lines are skipped", parseIgmp6, "\nx y z\n0 zero ff02::1 1 0 0\n7\n",
			nil},
		{"igmp header and group lines only", parseIgmp, "Idx\tDevice    : Count Querier\tGroup    Users Timer\tReporter\n\t\t\t\t010000E0     1 0:00000000\t\t0\n",
			nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.parse(tt.in); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestParseNetNSLink(t *testing.T) {
	tests := []struct {
		in   string
		want uint32
		ok   bool
	}{
		{"net:[4026531840]", 4026531840, true},
		{"net:[1]", 1, true},
		{"mnt:[4026531840]", 0, false},
		{"net:[4026531840", 0, false},
		{"net:[]", 0, false},
		{"net:[99999999999]", 0, false},
	}
	for _, tt := range tests {
		got, ok := ParseNetNSLink(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("ParseNetNSLink(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

const (
	fixtureSelfNetNS = 4026531833 // testdata/proc/self/ns/net
	fixtureNetNS     = 4026532177 // testdata/proc/4242/ns/net
	fixtureNoV6NetNS = 4026532300 // testdata/proc/4343/ns/net
)

func fixtureIfnames(t *testing.T) (*ifnameResolver, *int) {
	r := newIfnameResolver("testdata/proc", 64, time.Minute, 5*time.Second)
	if r.selfNetNS != fixtureSelfNetNS {
		t.Fatalf("agent netns %d, want the fixture's %d", r.selfNetNS, fixtureSelfNetNS)
	}
	calls := new(int)
	r.local = func(index int) (string, error) {
		*calls++
		if index == 2 {
			return "eth0", nil
		}
		return "", errors.New("route ip+net: no such network interface")
	}
	return r, calls
}

func TestIfnameLookup(t *testing.T) {
	tests := []struct {
		name           string
		netns, index   uint32
		pid, ppid      uint32
		want           string // "" means unknown
		wantLocalCalls int
	}{
		{"agent's namespace asks the kernel", fixtureSelfNetNS, 2, 4242, 1, "eth0", 1},
		{"agent's namespace, no such index", fixtureSelfNetNS, 9, 4242, 1, "", 1},
		{"other namespace, up veth", fixtureNetNS, 3, 4242, 1, "veth0", 0},
		{"other namespace, down tap only in igmp6", fixtureNetNS, 5, 4242, 1, "tap0", 0},
		{"other namespace through the parent", fixtureNetNS, 4, 9999, 4242, "br0", 0},
		{"other namespace, index absent", fixtureNetNS, 77, 4242, 1, "", 0},
		{"IPv6-less namespace via igmp", fixtureNoV6NetNS, 12, 4343, 1, "eth0", 0},
		{"process in another namespace than the socket", fixtureNoV6NetNS, 3, 4242, 1, "", 0},
		{"process gone", fixtureNetNS, 3, 9999, 9998, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, calls := fixtureIfnames(t)
			name, hit := r.lookup(tt.netns, tt.index, tt.pid, tt.ppid)
			if hit {
				t.Error("first lookup was a hit")
			}
			if got := deref(name); got != tt.want || (name == nil) != (tt.want == "") {
				t.Errorf("name %q, want %q", got, tt.want)
			}
			if *calls != tt.wantLocalCalls {
				t.Errorf("%d netlink lookups, want %d", *calls, tt.wantLocalCalls)
			}
			again, hit := r.lookup(tt.netns, tt.index, tt.pid, tt.ppid)
			if !hit || deref(again) != tt.want {
				t.Errorf("second lookup: %q, hit=%v; want the cached answer", deref(again), hit)
			}
			if *calls != tt.wantLocalCalls {
				t.Errorf("the cached answer asked the kernel again")
			}
		})
	}
}

func TestIfnameCacheFillsFromOneRead(t *testing.T) {
	r, _ := fixtureIfnames(t)
	r.lookup(fixtureNetNS, 1, 4242, 1)
	// The process is gone now, but its namespace's interfaces were all read.
	for idx, want := range map[uint32]string{2: "veth1", 3: "veth0", 4: "br0", 5: "tap0"} {
		name, hit := r.lookup(fixtureNetNS, idx, 9999, 1)
		if !hit || deref(name) != want {
			t.Errorf("index %d: %q, hit=%v; want %q from the cache", idx, deref(name), hit, want)
		}
	}
}

func TestIfnameExpiry(t *testing.T) {
	r, calls := fixtureIfnames(t)
	now := time.Now()
	r.now = func() time.Time { return now }
	r.lookup(fixtureSelfNetNS, 2, 1, 1)
	r.lookup(fixtureSelfNetNS, 9, 1, 1)
	now = now.Add(6 * time.Second) // past the negative TTL only
	if _, hit := r.lookup(fixtureSelfNetNS, 2, 1, 1); !hit {
		t.Error("known name expired with the negative TTL")
	}
	if _, hit := r.lookup(fixtureSelfNetNS, 9, 1, 1); hit {
		t.Error("unknown name outlived the negative TTL")
	}
	now = now.Add(time.Minute)
	if name, hit := r.lookup(fixtureSelfNetNS, 2, 1, 1); hit || deref(name) != "eth0" {
		t.Errorf("after the TTL: %q, hit=%v; want a fresh lookup", deref(name), hit)
	}
	if *calls != 4 {
		t.Errorf("%d netlink lookups, want 4", *calls)
	}
}

// Whoever owns a network namespace names its interfaces, with any bytes
// but '/', ':' and whitespace: the name enters the record escaped.
func TestIfnameEscaped(t *testing.T) {
	proc := t.TempDir()
	if err := os.MkdirAll(proc+"/777/net", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(proc+"/777/ns", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("net:[4026532999]", proc+"/777/ns/net"); err != nil {
		t.Fatal(err)
	}
	igmp6 := "7    \x1b]0;pwn\x07\xff  ff020000000000000000000000000001     1 0000000C 0\n"
	if err := os.WriteFile(proc+"/777/net/igmp6", []byte(igmp6), 0o644); err != nil {
		t.Fatal(err)
	}
	r := newIfnameResolver(proc, 16, time.Minute, time.Second)
	name, _ := r.lookup(4026532999, 7, 777, 0)
	if want := `\x1b]0;pwn\x07\xff`; deref(name) != want {
		t.Errorf("interface name %q, want %q", deref(name), want)
	}
}
