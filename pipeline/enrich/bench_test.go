package enrich

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"testing"

	"github.com/bindwatch/bindwatch/bpf"
	"github.com/bindwatch/bindwatch/pipeline/record"
	"github.com/bindwatch/bindwatch/schemas"
)

// The hot path: every lookup hits the caches, as in steady state.
func BenchmarkEnrich(b *testing.B) {
	e, tr := workloadEnricher(b, fixtureRuntimes("testdata/runtimes"))
	dockerID := tr.id(dockerScope)
	events := map[string]bpf.Event{
		"ipv4-any": {
			BootNS: 123_456_789_000, Seq: 1, CgroupID: dockerID, PID: 4242, TID: 4242, PPID: 1,
			NetNS: fixtureNetNS, Protocol: bpf.ProtoTCP, Family: bpf.AFInet, Port: 8080,
			ReqPort: 8080, ReqFamily: bpf.AFInet, Opts: bpf.OptReuseAddr, Comm: comm("nginx"),
		},
		"ipv4-addr": {
			BootNS: 123_456_789_000, Seq: 1, CgroupID: dockerID, PID: 4242, TID: 4242, PPID: 1,
			NetNS: fixtureNetNS, Protocol: bpf.ProtoUDP, Family: bpf.AFInet, Port: 53,
			ReqPort: 53, ReqFamily: bpf.AFInet, Addr: addr16("10.1.2.3"), ReqAddr: addr16("10.1.2.3"),
			Comm: comm("coredns"),
		},
		"ipv6-addr-bound-if": {
			BootNS: 123_456_789_000, Seq: 1, CgroupID: dockerID, PID: 4242, TID: 4243, PPID: 1,
			NetNS: fixtureNetNS, Protocol: bpf.ProtoTCP, Family: bpf.AFInet6, Port: 8443,
			ReqPort: 8443, ReqFamily: bpf.AFInet6, Addr: addr16("fd00:1::5"), ReqAddr: addr16("fd00:1::5"),
			BoundIf: 3, Comm: comm("envoy"),
		},
	}
	for name, ev := range events {
		b.Run(name, func(b *testing.B) {
			var out schemas.BindEvent
			e.Enrich(&ev, &out) // warm the caches
			if out.ContainerID == nil {
				b.Fatal("container not resolved")
			}
			misses := e.Stats().CgroupMisses + e.Stats().IfnameMisses
			b.ReportAllocs()
			for b.Loop() {
				ev.Seq++
				e.Enrich(&ev, &out)
			}
			if got := e.Stats().CgroupMisses + e.Stats().IfnameMisses; got != misses {
				b.Fatalf("%d cache misses in the loop", got-misses)
			}
		})
	}
}

// Run as a stage: channel hand-offs included, one producer, one consumer.
func BenchmarkRun(b *testing.B) {
	e, dockerID, _ := fixtureEnricher(b)
	ev := bpf.Event{
		BootNS: 123_456_789_000, CgroupID: dockerID, PID: 4242, TID: 4242, PPID: 1,
		Protocol: bpf.ProtoTCP, Family: bpf.AFInet, Port: 8080, ReqPort: 8080,
		ReqFamily: bpf.AFInet, Addr: addr16("10.1.2.3"), ReqAddr: addr16("10.1.2.3"), Comm: comm("nginx"),
	}
	in := make(chan record.Raw, 1024)
	out := make(chan record.Record, 1024)
	done := make(chan error)
	go func() { done <- e.Run(b.Context(), in, nil, out) }()
	consumed := make(chan int)
	go func() {
		n := 0
		for range out {
			n++
		}
		consumed <- n
	}()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ev.Seq = uint64(i)
		in <- record.Raw{Event: ev, Ack: record.Ack(i)}
	}
	close(in)
	if n := <-consumed; n != b.N {
		b.Fatalf("%d records for %d events", n, b.N)
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}

// The cost the ownership check adds to a cache miss: a stat per level of a
// root's path, down to the delegated directory of a user's.
func BenchmarkCgroupTrust(b *testing.B) {
	tr := newCgroupTree(b, dockerScope, forgedDocker)
	tr.delegate(userService, 1999)
	trust := tr.trust()
	for name, rel := range map[string]string{"root-owned-2-levels": dockerScope, "delegated-at-level-3-of-5": forgedDocker} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				trust.info("/" + rel)
			}
		})
	}
}

// First sight of a container's cgroup: what a cache miss costs, from the
// cgroup's path to its cached info, ownership checked, the runtime's files
// read (testdata/runtimes; page cache warm, as for a container that just
// started). "no-files" is the same miss without workload resolution.
func BenchmarkWorkloadFirstSight(b *testing.B) {
	_, tr := workloadEnricher(b, fixtureRuntimes("testdata/runtimes"))
	files := &workloadFiles{roots: fixtureRuntimes("testdata/runtimes")}
	for _, c := range []struct{ name, cgroup string }{
		{"docker", dockerScope}, {"containerd-cri", k8sLeaf}, {"cri-o", crioScope},
		{"podman", podmanScope}, {"host-unit", nginx}, {"pending", missingScope},
	} {
		for _, withFiles := range []bool{false, true} {
			name := c.name + "/no-files"
			trust := tr.trust()
			if withFiles {
				name, trust.files = c.name+"/files", files
			}
			b.Run(name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if info := trust.info("/" + c.cgroup); withFiles && info.workload == nil {
						b.Fatal("no workload")
					}
				}
			})
		}
	}
}

// Reading a container spec's annotations: a containerd CRI spec with
// Docker's default seccomp profile (testdata/spec-seccomp.json, 8.6 KB),
// decoded whole and by specAnnotations.
func BenchmarkSpecAnnotations(b *testing.B) {
	spec, err := os.ReadFile("testdata/spec-seccomp.json")
	if err != nil {
		b.Fatal(err)
	}
	b.Run("full-decode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var c struct {
				Annotations map[string]string `json:"annotations"`
			}
			if err := json.Unmarshal(spec, &c); err != nil || len(c.Annotations) == 0 {
				b.Fatal(err)
			}
		}
	})
	b.Run("specAnnotations", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if a, err := specAnnotations(spec); err != nil || len(a) == 0 {
				b.Fatal(err)
			}
		}
	})
}

// Podman's containers.json lists every container of the host: finding one
// among 1000, entries laid out as containers/storage writes them (its
// Container struct's order, id first), and the same list with its keys
// sorted, which takes the decode of the whole list.
func BenchmarkPodmanContainers1000(b *testing.B) {
	type entry struct {
		ID       string            `json:"id"`
		Names    []string          `json:"names"`
		Image    string            `json:"image"`
		Layer    string            `json:"layer"`
		Metadata string            `json:"metadata"`
		Created  string            `json:"created"`
		Flags    map[string]string `json:"flags"`
	}
	var list []entry
	for i := range 1000 {
		// Random ids, as runtimes make them.
		id, image := fmt.Sprintf("%x", sha256.Sum256([]byte{byte(i), byte(i >> 8)})), fmt.Sprintf("%x", sha256.Sum256([]byte{byte(i), byte(i >> 8), 1}))
		meta, _ := json.Marshal(map[string]any{"image-name": "docker.io/library/app:1", "image-id": image, "name": fmt.Sprintf("c%d", i)})
		list = append(list, entry{id, []string{fmt.Sprintf("c%d", i)}, image, id, string(meta), "2026-12-06T10:00:00Z", map[string]string{"MountLabel": ""}})
	}
	storage, _ := json.Marshal(list)
	var generic []map[string]any
	_ = json.Unmarshal(storage, &generic)
	sorted, _ := json.Marshal(generic)
	id := list[777].ID
	for name, file := range map[string][]byte{"storage-order": storage, "keys-sorted": sorted} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if w, ok := parsePodmanContainers(file, id); !ok || w.ContainerName != "c777" {
					b.Fatal(w, ok)
				}
			}
		})
	}
}
