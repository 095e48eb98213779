// Package pipeline assembles the agent: the capture, enrich, batch, encode
// and publish stages joined by bounded channels, run under one errgroup and
// stopped in order, each stage draining its input before closing its output.
package pipeline

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	"github.com/bindwatch/bindwatch/bpf"
	"github.com/bindwatch/bindwatch/internal/config"
	"github.com/bindwatch/bindwatch/internal/kafkasink"
	"github.com/bindwatch/bindwatch/internal/metrics"
	"github.com/bindwatch/bindwatch/internal/seal"
	"github.com/bindwatch/bindwatch/internal/spool"
	"github.com/bindwatch/bindwatch/pipeline/batch"
	"github.com/bindwatch/bindwatch/pipeline/capture"
	"github.com/bindwatch/bindwatch/pipeline/encode"
	"github.com/bindwatch/bindwatch/pipeline/enrich"
	"github.com/bindwatch/bindwatch/pipeline/publish"
	"github.com/bindwatch/bindwatch/pipeline/record"
	"github.com/bindwatch/bindwatch/schemas"
	"github.com/bindwatch/bindwatch/schemas/codec"
)

// Stats are every stage's counters.
type Stats struct {
	Capture capture.Stats
	Encode  encode.StageStats
	Publish publish.StageStats
}

// Agent is a started pipeline: hooks attached, encoder and publisher ready.
type Agent struct {
	// cfg is the running configuration: Reload replaces it while the
	// stages read it, so it is only ever swapped whole (see current).
	cfg      atomic.Pointer[config.Config]
	log      *slog.Logger
	probe    *bpf.Probe
	reader   *bpf.Reader
	enricher *enrich.Enricher
	encoder  codec.Encoder
	// sealer signs every batch with the host's key.
	sealer *encode.Sealer
	sink   publish.Sink
	spool  *spool.Spool
	stats  Stats
	// observe, when set, gets each event's bind-to-acknowledgement
	// latency in seconds (benchmarks).
	observe func(seconds float64)
	metrics *metrics.Metrics
	health  *metrics.Health
	// endpoint serves metrics and health; nil when metrics.listen is empty.
	endpoint *metrics.Endpoint
	// lastAck is when Kafka last acknowledged a write, lastTick when the
	// monitor last ran (unix nanoseconds).
	lastAck, lastTick atomic.Int64
	// inventories triggers an inventory pass outside the schedule (after
	// a loss); the inventory stats count the passes.
	inventories chan string
	invStats    InventoryStats
	// before is what happened while no agent ran, as this one found it.
	before beforeStart
	// suppressedReported is, per user, the budget drops already reported;
	// flooding, the users whose last report had new drops.
	suppressedReported map[uint32]bpf.Suppression
	flooding           map[uint32]bool
	// leaseRenewed is when the capture lease was last renewed (unix
	// nanoseconds; 0 before the first renewal).
	leaseRenewed atomic.Int64
	// inventoryFromProcfs is set once the inventory walks /proc (no BPF
	// socket iterator): a blind spot the heartbeat names.
	inventoryFromProcfs atomic.Bool
	// limits are the batch size and timeout, which a reload may change.
	limits *batch.Limits
	// registry, with a registry configured, gives messages framed before
	// it answered their schema id; registryErr is why it had not at start.
	registry    *schemaRegistry
	registryErr error
	// stopAt is when Run's context was cancelled (unix nanoseconds; 0
	// while running): shutdown.timeout counts from then, for Run and
	// Close together.
	stopAt atomic.Int64
}

// Start prepares every stage and attaches the BPF hooks; events are captured
// from then on, queued until Run reads them.
func Start(ctx context.Context, cfg *config.Config, log *slog.Logger) (_ *Agent, err error) {
	a := &Agent{log: log, limits: batch.NewLimits(cfg.Pipeline.BatchSize, cfg.Pipeline.BatchTimeout),
		inventories: make(chan string, 1), suppressedReported: map[uint32]bpf.Suppression{}, flooding: map[uint32]bool{}}
	a.cfg.Store(cfg)
	// undo releases what was opened when a later step fails.
	var undo []func()
	defer func() {
		if err != nil {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
		}
	}()
	if a.enricher, err = enrich.New(enrich.Config{Hostname: cfg.Host.Name, Logger: log, Runtimes: enrich.RuntimeRoots{
		Docker: cfg.Workload.DockerRoot, Containerd: cfg.Workload.ContainerdState,
		Storage: cfg.Workload.StorageRoot, RunStorage: cfg.Workload.StorageRunRoot,
		CRISocket: cfg.Workload.CRISocket,
	}}); err != nil {
		return nil, fmt.Errorf("enrichment: %w", err)
	}
	// First of what touches the disk: a spool directory that cannot be
	// written is refused at start, naming the path. It also keeps the
	// registry's schema ids.
	if a.spool, err = spool.Open(cfg.Spool.Dir, spool.Options{
		MaxBytes:   cfg.Spool.MaxBytes,
		FullPolicy: cfg.Spool.FullPolicy,
		Fsync:      cfg.Spool.Fsync,
		Expendable: publish.Expendable,
		SplitMixed: true,
		KindNames:  publish.SpoolKinds[:],
		Logger:     log,
	}); err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	undo = append(undo, func() { a.spool.Close() })
	framing, err := a.newEncoder(ctx)
	if err != nil {
		return nil, err
	}
	key, previous, err := loadHostKey(cfg.HostKeyFile(), log)
	if err != nil {
		return nil, fmt.Errorf("host key (host.key_file): %w", err)
	}
	if a.sink, err = openSink(cfg, log); err != nil {
		return nil, err
	}
	undo = append(undo, func() { a.sink.Close(ctx) })
	a.probe, err = bpf.Load(bpf.Options{
		Hook:            bpf.Hook(cfg.Capture.Hook),
		Filter:          captureFilter(cfg),
		RingBufferBytes: uint32(cfg.Capture.RingBufferBytes),
		PinDir:          cfg.Capture.PinDir,
		OrphanTimeout:   cfg.Capture.OrphanTimeout,
		Logger:          log,
	})
	if err != nil {
		return nil, err
	}

	undo = append(undo, func() { a.probe.Close() })
	if a.reader, err = a.probe.NewReader(); err != nil {
		return nil, err
	}
	undo = append(undo, func() { a.reader.Close() })
	// Before capture reads: the agent's own records go out among the
	// ring's in seq order.
	a.enricher.OrderWith(a.reader, a.reader.Position())
	a.noteBeforeStart()
	a.health = metrics.NewHealth(checkCapture, checkKafka, checkSpool, checkRegistry)
	a.metrics = metrics.New(buildInfo(), string(a.probe.Hook()), a.Snapshot)
	if cfg.Metrics.Listen != "" {
		// A listener that cannot be had does not stop capture: see Endpoint.
		a.endpoint = a.metrics.NewEndpoint(cfg.Metrics.Listen, a.health, log)
		a.endpoint.Open()
	}
	id := a.enricher.Identity()
	a.sealer = &encode.Sealer{Key: key, Host: id.Hostname, HostID: id.HostID, BootID: id.BootID,
		Reserve: a.probe.ReserveSeq, Announce: cfg.Heartbeat.Interval}
	if previous != nil {
		a.sealer.Key, a.sealer.Next = previous, key
	}
	log.Info("bindwatch agent started", "component", "agent",
		"hook", a.probe.Hook(), "kernel", kernelRelease(), "host", id.Hostname, "host_id", id.HostID,
		"brokers", cfg.Kafka.Brokers, "topic", cfg.Kafka.Topic, "framing", framing,
		"public_key", base64.StdEncoding.EncodeToString(key.Public().(ed25519.PublicKey)))
	return a, nil
}

// newEncoder picks the framing: Confluent when a registry is configured
// (the schema registered or looked up once, here), else single-object.
// It returns a description of the framing for the start log line.
func (a *Agent) newEncoder(ctx context.Context) (string, error) {
	cfg := a.current()
	v := cfg.Schema.Version
	text, err := schemas.BindEventSchema(v)
	if err != nil {
		return "", err
	}
	if url := cfg.Schema.RegistryURL; url != "" {
		subject := schemas.Subject(cfg.Kafka.Topic)
		a.registry = newSchemaRegistry(cfg.Spool.Dir, url, subject, a.log)
		a.registry.report = func(err error) { a.health.Set(checkRegistry, err) }
		rctx, cancel := context.WithTimeout(ctx, startRegisterTimeout)
		id, err := registerSchema(rctx, cfg.Spool.Dir, url, subject, text, a.log)
		cancel()
		if err != nil {
			// Binds are not left unrecorded for want of an id: events
			// are framed with a placeholder and wait in the spool until
			// the registry answers.
			if ctx.Err() != nil {
				return "", fmt.Errorf("schema registry: %w", err)
			}
			a.log.Warn("schema registry unreachable and no id remembered for this schema; capturing and spooling, asking again in the background",
				"component", "agent", "registry", url, "subject", subject, "error", err)
			a.registryErr = fmt.Errorf("schema registry %s: %w", url, err)
			a.registry.ask(v)
			if a.encoder, err = codec.NewConfluentPending([]byte(text), v); err != nil {
				return "", err
			}
			return fmt.Sprintf("confluent schema v%d subject %s id pending (registry unreachable)", v, subject), nil
		}
		a.registry.set(v, id)
		if a.encoder, err = codec.NewConfluent([]byte(text), id); err != nil {
			return "", err
		}
		return fmt.Sprintf("confluent schema v%d subject %s id %d", v, subject, id), nil
	}
	fp, err := codec.Fingerprint([]byte(text))
	if err != nil {
		return "", err
	}
	if a.encoder, err = codec.NewSingleObject([]byte(text)); err != nil {
		return "", err
	}
	return fmt.Sprintf("single-object schema v%d fingerprint %#016x", v, fp), nil
}

// current is the running configuration. Reload may replace it at any
// time: read it once per use and keep the pointer, never a field path.
func (a *Agent) current() *config.Config { return a.cfg.Load() }

// Stats are the live counters of every stage.
func (a *Agent) Stats() *Stats { return &a.stats }

// EnrichStats are the enricher's counters (its slow paths, and how its
// ordering held the agent's own records).
func (a *Agent) EnrichStats() enrich.Stats { return a.enricher.Stats() }

// Probe is the attached BPF probe.
func (a *Agent) Probe() *bpf.Probe { return a.probe }

// Run moves events through the stages until ctx is cancelled, then stops
// capture and drains every stage in order: what the kernel delivered is
// published, or counted as lost at the shutdown deadline.
func (a *Agent) Run(ctx context.Context) error {
	cfg := a.current()
	p := cfg.Pipeline
	events := make(chan record.Raw, p.QueueSize)
	snapshots := make(chan record.Record, p.BatchSize)
	records := make(chan record.Record, p.BatchSize)
	batches := make(chan []record.Record, 4)
	encoded := make(chan encode.Batch, 4)
	stage := publish.Stage{
		Sink:            a.sink,
		Spool:           a.spool,
		Key:             []byte(a.enricher.Identity().HostID),
		ShutdownTimeout: cfg.Shutdown.Timeout,
		LateAfter:       cfg.Kafka.SpoolAfter,
		MaxPending:      p.QueueSize,
		Stats:           &a.stats.Publish,
		Logger:          a.log,
		Observer:        stageObserver{a},
	}
	if a.registry != nil {
		stage.Prepare = a.registry.prepare
	}
	stopped := context.AfterFunc(ctx, func() { a.stopAt.Store(time.Now().UnixNano()) })
	defer stopped()
	// Stages after capture ignore ctx: each ends when its input closes.
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return capture.Run(gctx, a.reader, a.probe, events, &a.stats.Capture) })
	g.Go(func() error { return a.runInventory(gctx, snapshots) })
	g.Go(func() error { return a.enricher.Run(gctx, events, snapshots, records) })
	g.Go(func() error { return batch.Run(gctx, records, batches, a.limits) })
	g.Go(func() error { return encode.Run(gctx, a.encoder, batches, encoded, &a.stats.Encode, a.sealer, a.log) })
	g.Go(func() error { return stage.Run(gctx, encoded) })
	g.Go(func() error { return a.monitor(gctx) })
	if a.registry != nil {
		g.Go(func() error { return a.registry.run(gctx) })
	}
	if a.endpoint != nil {
		g.Go(func() error { return a.endpoint.Run(gctx) })
	}
	a.health.Set(checkCapture, nil)
	a.health.Set(checkSpool, nil)
	a.health.Set(checkRegistry, a.registryErr)
	a.health.SetReady(true)
	err := g.Wait()
	a.health.SetReady(false)
	return err
}

// delivered frees the ring space of events that are now safe: batches are
// delivered in order, so a batch's token frees everything before it.
func (a *Agent) delivered(ack record.Ack) {
	if ack != 0 {
		a.reader.Commit(uint64(ack))
	}
}

// Close releases the probe and the publisher, waiting for the publisher at
// most until ctx's deadline, and never past shutdown.timeout after Run was
// told to stop: one deadline covers the whole stop.
func (a *Agent) Close(ctx context.Context) error {
	if at := a.stopAt.Load(); at != 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, time.Unix(0, at).Add(a.current().Shutdown.Timeout))
		defer cancel()
	}
	if a.endpoint != nil {
		a.endpoint.Close()
	}
	a.reader.Close()
	// The full lease counts from the stop, not from the last tick: an
	// upgrade or a restart gets all of capture.orphan_timeout before
	// capture stops or bindwatch-unpin.timer may remove the pins.
	a.renewLease()
	a.probe.Close()
	return errors.Join(a.sink.Close(ctx), a.spool.Close())
}

func captureFilter(cfg *config.Config) bpf.Filter {
	f := bpf.Filter{Errors: cfg.Capture.Errors, Ports: cfg.Capture.Ports, Listeners: true}
	if b := uint32(cfg.Capture.UIDBudget); b > 0 {
		f.BudgetPerSec, f.BudgetBurst = b, max(b/10, 1)
	}
	if cfg.Capture.PID >= 0 {
		f.PID = uint32(cfg.Capture.PID)
	}
	if cfg.Capture.UID >= 0 {
		f.UID, f.HasUID = uint32(cfg.Capture.UID), true
	}
	return f
}

// openSink opens the output events go to. A new output is a package with a
// Sink (see publish.Sink) and a line here.
func openSink(cfg *config.Config, log *slog.Logger) (publish.Sink, error) {
	kcfg, err := cfg.KafkaSink(os.Environ())
	if err != nil {
		return nil, err
	}
	p, err := kafkasink.New(kcfg, log)
	if err != nil {
		return nil, fmt.Errorf("kafka: %w", err)
	}
	return p, nil
}

func kernelRelease() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "unknown"
	}
	return unix.ByteSliceToString(u.Release[:])
}

// loadHostKey loads the host key, creating it at first start. A key put
// in path.next (mode 0600) replaces it: the old one moves to path.old, and
// while path.old is there, the agent announces at each start the rotation
// from it to the current key, signed by it (the audit takes a rotation it
// already followed as a no-op), so a rotation lost in a crash is made
// again. previous is the old key, nil without one.
func loadHostKey(path string, log *slog.Logger) (key, previous ed25519.PrivateKey, err error) {
	next, old := path+".next", path+".old"
	if _, err := os.Stat(next); err == nil {
		if _, err := seal.Load(next); err != nil {
			return nil, nil, err
		}
		if err := os.Rename(path, old); err != nil {
			return nil, nil, fmt.Errorf("rotating to %s: %w", next, err)
		}
		if err := os.Rename(next, path); err != nil {
			return nil, nil, fmt.Errorf("rotating to %s: %w", next, err)
		}
		log.Warn("host key rotated: the old key signs the new one in the first batch", "component", "agent", "key_file", path, "old", old)
	}
	key, created, err := seal.LoadOrCreate(path)
	if err != nil {
		return nil, nil, err
	}
	if created {
		log.Info("host key created: this agent seals its records with it from now on", "component", "agent", "key_file", path)
	}
	if _, err := os.Stat(old); err == nil {
		if previous, err = seal.Load(old); err != nil {
			return nil, nil, err
		}
	}
	return key, previous, nil
}
