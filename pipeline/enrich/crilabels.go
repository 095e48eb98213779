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

// containerd's CRI plugin writes a pod's name, namespace and uid into each
// container's OCI spec, but keeps the pod's labels only in containerd's
// metadata database (bbolt, locked by containerd for as long as it runs).
// So they are the one thing asked of a runtime's socket: PodSandboxStatus,
// off the event path, once per pod. Until the answer comes the pod's records
// go on without labels (counted); later records carry them.
//
// A pod's sandbox starts well before its containers (their images are
// pulled and created after it), so the asker does not wait for a record:
// it watches containerd's task directory of the CRI's namespace with
// inotify and asks about each new task as it appears. The containers'
// first records then find the labels already cached. Asking about a task
// that is a container, not a sandbox, costs one NotFound answer.

// podLabelsQueueSize bounds the pods waiting for an answer.
const podLabelsQueueSize = 256

// podLabelsTimeout bounds one question to the CRI.
const podLabelsTimeout = 2 * time.Second

type podLabelsResult struct {
	sandbox string
	labels  map[string]string
	ok      bool // false: the CRI did not answer; asked again later
}

// criPodLabels is the background asker. It is made only when a CRI socket
// is configured, and connects only when a CRI pod is first seen.
type criPodLabels struct {
	socket string
	// tasks is containerd's task directory of the CRI's namespace
	// (<state>/io.containerd.runtime.v2.task/k8s.io), watched for new pods.
	tasks   string
	reqs    chan string
	results chan podLabelsResult
	asked   atomic.Uint64
	failed  atomic.Uint64
	log     *slog.Logger
}

func newCRIPodLabels(socket, tasks string, log *slog.Logger) *criPodLabels {
	return &criPodLabels{
		socket:  socket,
		tasks:   tasks,
		reqs:    make(chan string, podLabelsQueueSize),
		results: make(chan podLabelsResult, podLabelsQueueSize),
		log:     log,
	}
}

// A new task is asked about once its bundle says it is a sandbox, and
// again while the CRI does not know it yet (the task exists before
// RunPodSandbox returns): every prefetchEvery, prefetchTries times.
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
		var sandbox string
		var prefetch bool
		select {
		case <-ctx.Done():
			return
		case sandbox = <-c.reqs:
		case sandbox = <-created:
			prefetch = true
			a, err := c.annotations(sandbox)
			if err != nil {
				again(sandbox) // the bundle is being written
				continue
			}
			if a[criContainerType] != "sandbox" {
				delete(tries, sandbox)
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
		qctx, cancel := context.WithTimeout(ctx, podLabelsTimeout)
		st, err := client.PodSandboxStatus(qctx, &cri.PodSandboxStatusRequest{PodSandboxId: sandbox})
		cancel()
		res := podLabelsResult{sandbox: sandbox}
		if err != nil {
			c.failed.Add(1)
			c.log.Debug("pod labels not read", "cri_socket", c.socket, "sandbox", sandbox, "err", err)
			if prefetch {
				again(sandbox)
				continue
			}
		} else {
			delete(tries, sandbox)
			res.ok = true
			res.labels = boundLabels(st.GetStatus().GetLabels(), isKubeletLabel)
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
	b, err := readState(filepath.Join(c.tasks, id, "config.json"))
	if err != nil {
		return nil, err
	}
	return specAnnotations(b)
}

// podLabelsRetry is how long a pod the CRI did not answer about waits
// before it is asked again.
const podLabelsRetry = 5 * time.Second

// podLabels is info with its pod's labels once the CRI answered; info
// meanwhile. It never waits.
func (e *Enricher) podLabels(id uint64, info *cgroupInfo) *cgroupInfo {
	w := info.workload
	e.collectPodLabels()
	if labels, ok := e.labelCache.get(w.sandbox); ok {
		found := *info
		nw := *w
		nw.labelsPending = false
		if len(*labels) > 0 {
			nw.podLabels = escapeLabels(*labels)
		}
		found.workload = &nw
		e.cgroups.store(id, &found)
		return &found
	}
	e.podLabelsPending.Add(1)
	now := e.cgroups.monoNS()
	if next, asked := e.labelsAsked[w.sandbox]; asked && now < next {
		return info
	}
	if len(e.labelsAsked) >= podLabelsQueueSize {
		return info
	}
	select {
	case e.criLabels.reqs <- w.sandbox:
		// Asked again after podLabelsRetry if no answer came by then.
		e.labelsAsked[w.sandbox] = now + int64(podLabelsRetry)
	default:
	}
	return info
}

// collectPodLabels caches what the CRI answered so far.
func (e *Enricher) collectPodLabels() {
	if e.criLabels == nil {
		return
	}
	for {
		select {
		case res := <-e.criLabels.results:
			if res.ok {
				delete(e.labelsAsked, res.sandbox)
				e.labelCache.put(res.sandbox, res.labels)
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
