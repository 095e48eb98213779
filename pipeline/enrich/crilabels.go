package enrich

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	cri "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// containerd's CRI plugin writes a pod's name, namespace and uid and a
// container's name and image reference into each container's OCI spec, but
// keeps the pod's labels and the image's digest only in containerd's
// metadata database (bbolt, locked by containerd for as long as it runs).
// So they are the things asked of a runtime's socket, off the event path:
// PodSandboxStatus once per pod, ContainerStatus once per container. Until
// the answer comes, records go on without them (counted); later records
// carry them.
//
// A task's bundle is written before its process starts, and a pod's sandbox
// well before its containers (their images are pulled and created after
// it), so the asker does not wait for a record: it watches containerd's
// task directory of the CRI's namespace with inotify and asks about each
// new task as it appears, a sandbox for its labels, a container for its
// image. The first records then find the answers already cached.

// podLabelsQueueSize bounds the pods waiting for an answer.
const podLabelsQueueSize = 256

// podLabelsTimeout bounds one question to the CRI.
const podLabelsTimeout = 2 * time.Second

// criQuery asks about a sandbox's labels, or a container's image digest.
type criQuery struct {
	id        string
	container bool
}

type podLabelsResult struct {
	criQuery
	labels map[string]string // a sandbox's
	digest string            // a container's image, sha256:…; "" if the CRI names none
	ok     bool              // false: the CRI did not answer; asked again later
}

// criPodLabels is the background asker. It is made only when a CRI socket
// is configured, and connects only when a CRI pod is first seen.
type criPodLabels struct {
	socket string
	// tasks is containerd's task directory of the CRI's namespace
	// (<state>/io.containerd.runtime.v2.task/k8s.io), watched for new pods.
	tasks string
	// files reads the bundles as the workload's files are read (through
	// the elevated reader where they are root's alone).
	files   *workloadFiles
	reqs    chan criQuery
	results chan podLabelsResult
	asked   atomic.Uint64
	failed  atomic.Uint64
	log     *slog.Logger
}

func newCRIPodLabels(socket, tasks string, files *workloadFiles, log *slog.Logger) *criPodLabels {
	return &criPodLabels{
		socket:  socket,
		tasks:   tasks,
		files:   files,
		reqs:    make(chan criQuery, podLabelsQueueSize),
		results: make(chan podLabelsResult, podLabelsQueueSize),
		log:     log,
	}
}

// A new task is asked about once its bundle says what it is, and again
// while the CRI does not know it yet (the task exists before
// RunPodSandbox or CreateContainer returns): every prefetchEvery,
// prefetchTries times.
const (
	prefetchEvery = 20 * time.Millisecond
	prefetchTries = 250
)

func (c *criPodLabels) run(ctx context.Context) {
	created := make(chan string, podLabelsQueueSize)
	go c.watch(ctx, created)
	tries := map[string]int{} // new tasks not settled yet
	again := func(id string) {
		if tries[id]++; tries[id] >= prefetchTries {
			delete(tries, id)
			return
		}
		time.AfterFunc(prefetchEvery, func() {
			select {
			case created <- id:
			default:
			}
		})
	}
	var client cri.RuntimeServiceClient
	for {
		var q criQuery
		var prefetch bool
		select {
		case <-ctx.Done():
			return
		case q = <-c.reqs:
		case q.id = <-created:
			prefetch = true
			a, err := c.annotations(q.id)
			if err != nil {
				again(q.id) // the bundle is being written
				continue
			}
			switch a[criContainerType] {
			case "sandbox":
			case "container":
				q.container = true
				if digestOf(a[criImageName]) != "" {
					delete(tries, q.id) // pinned by digest: the spec says it
					continue
				}
			default:
				delete(tries, q.id) // not the CRI's
				continue
			}
		}
		if client == nil {
			conn, err := grpc.NewClient("unix://"+c.socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				c.log.Warn("pod labels unavailable", "cri_socket", c.socket, "err", err)
				return
			}
			defer conn.Close()
			client = cri.NewRuntimeServiceClient(conn)
		}
		c.asked.Add(1)
		res := podLabelsResult{criQuery: q}
		qctx, cancel := context.WithTimeout(ctx, podLabelsTimeout)
		var err error
		if q.container {
			var st *cri.ContainerStatusResponse
			if st, err = client.ContainerStatus(qctx, &cri.ContainerStatusRequest{ContainerId: q.id}); err == nil {
				res.digest = digestOf(st.GetStatus().GetImageRef())
			}
		} else {
			var st *cri.PodSandboxStatusResponse
			if st, err = client.PodSandboxStatus(qctx, &cri.PodSandboxStatusRequest{PodSandboxId: q.id}); err == nil {
				res.labels = boundLabels(st.GetStatus().GetLabels(), isKubeletLabel)
			}
		}
		cancel()
		if err != nil {
			c.failed.Add(1)
			c.log.Debug("not read from the CRI", "cri_socket", c.socket, "id", q.id, "container", q.container, "err", err)
			if prefetch {
				again(q.id)
				continue
			}
		} else {
			delete(tries, q.id)
			res.ok = true
		}
		select {
		case c.results <- res:
		case <-ctx.Done():
			return
		}
	}
}

// annotations reads the spec of the task id in c.tasks.
func (c *criPodLabels) annotations(id string) (map[string]string, error) {
	b, err := c.files.read(filepath.Join(c.tasks, id, "config.json"))
	if err != nil {
		return nil, err
	}
	return specAnnotations(b)
}

// podLabelsRetry is how long a pod the CRI did not answer about waits
// before it is asked again.
const podLabelsRetry = 5 * time.Second

// criAnswers is info with its pod's labels and its image's digest once
// the CRI answered; info meanwhile. It never waits.
func (e *Enricher) criAnswers(id uint64, info *cgroupInfo) *cgroupInfo {
	w := info.workload
	e.collectPodLabels()
	nw := *w
	if w.labelsPending {
		if labels, ok := e.labelCache.get(w.sandbox); ok {
			nw.labelsPending = false
			nw.podLabels = escapeLabels(*labels)
		} else {
			e.podLabelsPending.Add(1)
			e.askCRI(criQuery{id: w.sandbox})
		}
	}
	if w.digestPending {
		if digest, ok := e.digestCache.get(w.container); ok {
			nw.digestPending = false
			nw.imageDigest = optText(*digest)
		} else {
			e.imageDigestPending.Add(1)
			e.askCRI(criQuery{id: w.container, container: true})
		}
	}
	if nw.labelsPending == w.labelsPending && nw.digestPending == w.digestPending {
		return info
	}
	found := *info
	found.workload = &nw
	e.cgroups.store(id, &found)
	return &found
}

// askCRI hands q to the asker unless it was asked within podLabelsRetry.
func (e *Enricher) askCRI(q criQuery) {
	now := e.cgroups.monoNS()
	if next, asked := e.labelsAsked[q]; asked && now < next {
		return
	}
	if len(e.labelsAsked) >= podLabelsQueueSize {
		return
	}
	select {
	case e.criLabels.reqs <- q:
		// Asked again after podLabelsRetry if no answer came by then.
		e.labelsAsked[q] = now + int64(podLabelsRetry)
	default:
	}
}

// collectPodLabels caches what the CRI answered so far.
func (e *Enricher) collectPodLabels() {
	if e.criLabels == nil {
		return
	}
	for {
		select {
		case res := <-e.criLabels.results:
			if !res.ok {
				continue
			}
			delete(e.labelsAsked, res.criQuery)
			if res.container {
				e.digestCache.put(res.id, res.digest)
			} else {
				e.labelCache.put(res.id, res.labels)
			}
		default:
			return
		}
	}
}

// tasksPoll is how often a task directory that does not exist yet (no CRI
// pod ran since containerd started) is looked for: one stat.
const tasksPoll = time.Second

// watch sends the id of each task in c.tasks, those there when it starts
// and each created later, until ctx is done. A directory that does not
// exist yet is looked for every tasksPoll; one that cannot be watched is
// not.
func (c *criPodLabels) watch(ctx context.Context, created chan<- string) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		c.log.Warn("new pods not watched; their labels are asked at their first record", "err", err)
		return
	}
	f := os.NewFile(uintptr(fd), "inotify")
	defer f.Close()
	go func() {
		<-ctx.Done()
		f.Close()
	}()
	for {
		_, err := unix.InotifyAddWatch(fd, c.tasks, unix.IN_CREATE|unix.IN_MOVED_TO|unix.IN_ONLYDIR)
		if err == nil {
			break
		}
		if !errors.Is(err, unix.ENOENT) {
			c.log.Warn("new pods not watched; their labels are asked at their first record", "dir", c.tasks, "err", err)
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(tasksPoll):
		}
	}
	// The pods there already (the agent started after them): asked once.
	if entries, err := os.ReadDir(c.tasks); err == nil {
		for _, e := range entries {
			if e.IsDir() && isContainerID(e.Name()) {
				select {
				case created <- e.Name():
				case <-ctx.Done():
					return
				}
			}
		}
	}
	buf := make([]byte, 64<<10)
	for {
		n, err := f.Read(buf)
		if err != nil {
			return // closed
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			name := buf[off+unix.SizeofInotifyEvent : off+unix.SizeofInotifyEvent+int(ev.Len)]
			off += unix.SizeofInotifyEvent + int(ev.Len)
			id := string(bytes.TrimRight(name, "\x00"))
			if ev.Mask&unix.IN_ISDIR == 0 || !isContainerID(id) {
				continue
			}
			select {
			case created <- id:
			default: // asked at its first record instead
			}
		}
	}
}
