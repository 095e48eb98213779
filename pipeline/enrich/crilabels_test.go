package enrich

import (
	"context"
	"net"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	cri "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// fakeCRI answers PodSandboxStatus from a table, as containerd's CRI
// plugin does, once release is closed.
type fakeCRI struct {
	cri.UnimplementedRuntimeServiceServer
	labels  map[string]map[string]string
	images  map[string]string // container id -> image ref
	release chan struct{}
	mu      sync.Mutex
	asked   []string
}

func (f *fakeCRI) PodSandboxStatus(ctx context.Context, req *cri.PodSandboxStatusRequest) (*cri.PodSandboxStatusResponse, error) {
	f.mu.Lock()
	f.asked = append(f.asked, req.PodSandboxId)
	f.mu.Unlock()
	select {
	case <-f.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	labels, ok := f.labels[req.PodSandboxId]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "an error occurred when try to find sandbox %q: not found", req.PodSandboxId)
	}
	return &cri.PodSandboxStatusResponse{Status: &cri.PodSandboxStatus{Id: req.PodSandboxId, Labels: labels}}, nil
}

func (f *fakeCRI) ContainerStatus(ctx context.Context, req *cri.ContainerStatusRequest) (*cri.ContainerStatusResponse, error) {
	f.mu.Lock()
	f.asked = append(f.asked, req.ContainerId)
	f.mu.Unlock()
	select {
	case <-f.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	ref, ok := f.images[req.ContainerId]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "an error occurred when try to find container %q: not found", req.ContainerId)
	}
	return &cri.ContainerStatusResponse{Status: &cri.ContainerStatus{Id: req.ContainerId, ImageRef: ref}}, nil
}

func startFakeCRI(t *testing.T, f *fakeCRI) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "containerd.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	cri.RegisterRuntimeServiceServer(srv, f)
	go srv.Serve(l)
	t.Cleanup(srv.Stop)
	return sock
}

// The pod of testdata/runtimes' containerd container: its labels and its
// image's digest come from the CRI, asked at start for the sandbox and the
// container whose bundles are there (the kubelet's own labels dropped).
// Until the CRI answers, records go on without them, counted.
func TestCRIPodLabels(t *testing.T) {
	f := &fakeCRI{release: make(chan struct{}), labels: map[string]map[string]string{
		idSandbox: {"app": "web", "tier": "front", "io.kubernetes.pod.name": "web-7d4b9"},
	}, images: map[string]string{idB: "sha256:" + idC}}
	roots := fixtureRuntimes("testdata/runtimes")
	roots.CRISocket = startFakeCRI(t, f)
	e, tr := workloadEnricher(t, roots)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go e.criLabels.run(ctx)
	id := tr.id(k8sLeaf)

	if w := e.Workload(id, 0); w.PodLabels != nil || w.ImageDigest != "" || w.PodName != "web-7d4b9" {
		t.Fatalf("before the CRI answered: %+v", w)
	}
	if s := e.Stats(); s.PodLabelsPending != 1 || s.ImageDigestPending != 1 {
		t.Errorf("%d records counted without labels, %d without digest, want 1 and 1", s.PodLabelsPending, s.ImageDigestPending)
	}
	close(f.release)
	want := map[string]string{"app": "web", "tier": "front"}
	deadline := time.Now().Add(10 * time.Second)
	for {
		w := e.Workload(id, 0)
		if reflect.DeepEqual(w.PodLabels, want) && w.ImageDigest == "sha256:"+idC {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("labels never arrived: %+v", w)
		}
		time.Sleep(10 * time.Millisecond)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, asked := range f.asked {
		if asked != idSandbox && asked != idB {
			t.Errorf("asked the CRI about %s, neither the sandbox nor the container", asked)
		}
	}
}
