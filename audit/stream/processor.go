// Package stream is `bindwatch audit`'s Kafka side: a consumer-group
// member that keeps the listener tables of its partitions of the events
// topic, publishes them to the compacted state topic, evaluates the policy
// and publishes findings. Partition p of the state and findings topics
// holds what partition p of the events topic made, so an instance that
// gains p rebuilds p's tables from those two partitions, then replays the
// events after the group's committed offset.
package stream

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"

	auditconfig "github.com/bindwatch/bindwatch/audit/config"
	"github.com/bindwatch/bindwatch/audit/findings"
	"github.com/bindwatch/bindwatch/audit/policy"
	"github.com/bindwatch/bindwatch/audit/record"
	"github.com/bindwatch/bindwatch/internal/kafkaconn"
	"github.com/bindwatch/bindwatch/internal/topic"
	"github.com/bindwatch/bindwatch/schemas/codec"
)

// Processor is one audit instance.
type Processor struct {
	cfg     *auditconfig.Config
	dialer  *kafka.Dialer
	codec   *record.Codec
	decoder *codec.Decoder
	writer  *kafka.Writer
	log     *slog.Logger
	Metrics *Metrics

	policy    atomic.Pointer[policy.Policy]
	policyGen atomic.Uint64
	failing   atomic.Int32 // partitions between a failure and their next rebuild
	// hostKeys are audit.host_keys (nil: trust on first use); counts are
	// the events topic's partition counts seen since start (the key puts
	// a host on one partition for each; a record written before the topic
	// grew is on its partition for the old count).
	hostKeys map[string]ed25519.PublicKey
	counts   atomic.Pointer[[]int]
	// outParts is how many partitions the state and findings (and OCSF)
	// topics are known to have; growMu serializes adding to them.
	outParts atomic.Int64
	growMu   sync.Mutex

	// sleep waits between retries (sleepCtx; tests record the delays),
	// jitter draws the backoff's jitter (rand.Float64 when nil).
	sleep  func(context.Context, time.Duration) error
	jitter func() float64

	outMu sync.Mutex
	out   io.Writer // findings as JSON lines; nil prints nothing

	// Ready is closed once the group gave the first partitions and their
	// state is rebuilt (for tests and /healthz).
	ready     chan struct{}
	readyOnce sync.Once
}

// New prepares an instance; Run starts it.
func New(cfg *auditconfig.Config, dialer *kafka.Dialer, pol *policy.Policy, out io.Writer, log *slog.Logger) (*Processor, error) {
	rc, err := record.NewCodec()
	if err != nil {
		return nil, err
	}
	dec, err := codec.NewDecoder(cfg.RegistryURL)
	if err != nil {
		return nil, err
	}
	if cfg.RegistryURL != "" {
		if err := rc.ReadRegistry(cfg.RegistryURL); err != nil {
			return nil, err
		}
	}
	keys, err := cfg.PublicKeys()
	if err != nil {
		return nil, err
	}
	p := &Processor{cfg: cfg, dialer: dialer, codec: rc, decoder: dec, log: log, Metrics: NewMetrics(), out: out, ready: make(chan struct{}), hostKeys: keys, sleep: sleepCtx}
	p.policy.Store(pol)
	p.writer = &kafka.Writer{
		Addr: kafka.TCP(cfg.Brokers...),
		// The partition of a state or findings record is the partition of
		// the events that made it.
		Balancer:     kafka.BalancerFunc(func(m kafka.Message, _ ...int) int { return m.Partition }),
		RequiredAcks: kafka.RequireAll,
		BatchTimeout: time.Millisecond,
		BatchSize:    10000,
		BatchBytes:   1000000, // under the brokers' default message.max.bytes
		// A few quick attempts; past them publish retries with a longer
		// backoff, and sets aside what the brokers refuse for what it is.
		MaxAttempts: 3,
		Transport:   kafkaconn.TransportOf(dialer),
	}
	return p, nil
}

// SetPolicy replaces the policy; every partition re-evaluates its
// listeners with it before its next batch.
func (p *Processor) SetPolicy(pol *policy.Policy) {
	p.policy.Store(pol)
	p.policyGen.Add(1)
}

// Healthy says what is wrong, if anything: partitions failing to publish
// or commit, or waiting for the registry (they retry with backoff).
func (p *Processor) Healthy() error {
	if n := p.failing.Load(); n > 0 {
		return fmt.Errorf("%d partitions failing to publish or commit", n)
	}
	return nil
}

// Ready is closed when the instance holds its first rebuilt partitions.
func (p *Processor) Ready() <-chan struct{} { return p.ready }

// Run is a member of the consumer group until ctx ends.
func (p *Processor) Run(ctx context.Context) error {
	defer p.writer.Close()
	c := p.cfg
	if c.RegistryURL != "" {
		// Confluent framing for the state and findings topics, under the
		// subjects Kafka Connect and ksqlDB look for.
		err := p.codec.WriteConfluent(ctx, c.RegistryURL, record.ValueSubject(c.StateTopic), record.ValueSubject(c.FindingsTopic))
		if err != nil {
			return err
		}
	}
	n, err := ensureTopics(ctx, p.dialer, c.Brokers, c.EventsTopic, c.CreateTopics, p.outputTopics()...)
	if err != nil {
		return err
	}
	p.counts.Store(&[]int{n})
	p.outParts.Store(int64(n))
	group, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID: c.Group, Brokers: c.Brokers, Dialer: p.dialer, Topics: []string{c.EventsTopic},
		SessionTimeout: c.SessionTimeout, RebalanceTimeout: c.SessionTimeout,
		HeartbeatInterval: max(c.SessionTimeout/6, 100*time.Millisecond), JoinGroupBackoff: 500 * time.Millisecond,
		StartOffset: kafka.FirstOffset, Timeout: 10 * time.Second, WatchPartitionChanges: true,
		PartitionWatchInterval: 5 * time.Second,
	})
	if err != nil {
		return err
	}
	defer group.Close()
	for {
		gen, err := group.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, kafka.ErrGroupClosed) {
				return nil
			}
			p.log.Warn("consumer group", "err", err)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(time.Second):
			}
			continue
		}
		if n := p.notePartitionCount(ctx); n > 0 {
			// Before anything is written for a new partition (each
			// partition's holder checks again before its rebuild).
			if err := p.outputsFor(ctx, n); err != nil {
				p.log.Error("the events topic grew, the audit's topics did not", "err", err)
			}
		}
		assigned := gen.Assignments[c.EventsTopic]
		p.Metrics.partitions.Set(float64(len(assigned)))
		p.log.Info("partitions assigned", "generation", gen.ID, "member", gen.MemberID, "partitions", partitionIDs(assigned))
		if len(assigned) == 0 {
			p.readyOnce.Do(func() { close(p.ready) })
		}
		var pending sync.WaitGroup
		pending.Add(len(assigned))
		for _, a := range assigned {
			gen.Start(func(gctx context.Context) {
				p.hold(mergeDone(ctx, gctx), gen, a, &pending)
			})
		}
		go func() {
			pending.Wait()
			p.readyOnce.Do(func() { close(p.ready) })
		}()
	}
}

// hold works on one assigned partition until the generation ends. A
// failure (Kafka refusing a write, a commit) costs what memory holds: the
// partition is rebuilt from the topics and resumes after the last offset
// it committed, as another instance taking it over would.
func (p *Processor) hold(ctx context.Context, gen *kafka.Generation, a kafka.PartitionAssignment, pending *sync.WaitGroup) {
	var once sync.Once
	failed := false
	built := func() {
		once.Do(pending.Done)
		if failed {
			failed = false
			p.failing.Add(-1)
		}
	}
	defer func() {
		once.Do(pending.Done)
		if failed {
			p.failing.Add(-1)
		}
	}()
	offset := a.Offset
	// A partition that keeps failing (a topic the audit may not write) is
	// rebuilt after a growing delay, not every second; one that committed
	// since its last failure starts over from the shortest.
	bo := p.newBackoff()
	for {
		pc := &partition{p: p, gen: gen, id: a.ID, label: strconv.Itoa(a.ID), built: built, committed: -1}
		err := pc.run(ctx, offset)
		if err == nil || ctx.Err() != nil {
			return
		}
		if !failed {
			failed = true
			p.failing.Add(1)
		}
		if pc.committed >= 0 {
			offset = pc.committed
			bo.reset()
		}
		d := bo.next()
		p.log.Error("partition failed; rebuilding it", "partition", a.ID, "resume_offset", offset, "in", d.Round(time.Millisecond), "err", err)
		if p.sleep(ctx, d) != nil {
			return
		}
	}
}

func partitionIDs(as []kafka.PartitionAssignment) []int {
	ids := make([]int, len(as))
	for i, a := range as {
		ids[i] = a.ID
	}
	return ids
}

// mergeDone is a context that ends with either.
func mergeDone(a, b context.Context) context.Context {
	ctx, cancel := context.WithCancel(a)
	context.AfterFunc(b, cancel)
	return ctx
}

// print writes findings as JSON lines.
func (p *Processor) print(fs []findings.Finding) {
	if p.out == nil || len(fs) == 0 {
		return
	}
	var b []byte
	for i := range fs {
		b = record.AppendFindingJSON(b, &fs[i])
	}
	p.outMu.Lock()
	defer p.outMu.Unlock()
	if _, err := p.out.Write(b); err != nil {
		p.log.Warn("printing findings", "err", fmt.Errorf("%w", err))
	}
}

// notePartitionCount adds the events topic's partition count to those seen,
// when it changed (a new generation follows a change), and returns it (0
// when it could not be looked up).
func (p *Processor) notePartitionCount(ctx context.Context) int {
	parts, err := topic.Partitions(ctx, p.dialer, p.cfg.Brokers, p.cfg.EventsTopic)
	if err != nil {
		return 0
	}
	var old []int
	if cp := p.counts.Load(); cp != nil {
		old = *cp
	}
	if slices.Contains(old, len(parts)) {
		return len(parts)
	}
	p.log.Warn("the events topic's partition count changed: hosts move to other partitions, and the state and findings topics need as many",
		"topic", p.cfg.EventsTopic, "partitions", len(parts), "before", old)
	counts := append(slices.Clone(old), len(parts))
	p.counts.Store(&counts)
	return len(parts)
}

// outputsFor makes sure the audit's topics have n partitions or more, so
// that partition n-1 of the events topic has its partition in each: it
// adds them when audit.create_topics is set (Kafka cannot take partitions
// away: the events topic only grows), then checks them, still compacted.
func (p *Processor) outputsFor(ctx context.Context, n int) error {
	if p.outParts.Load() >= int64(n) {
		return nil
	}
	p.growMu.Lock()
	defer p.growMu.Unlock()
	if p.outParts.Load() >= int64(n) {
		return nil
	}
	names := p.outputTopics()
	if p.cfg.CreateTopics {
		if err := growTopics(ctx, p.dialer, p.cfg.Brokers, n, names...); err != nil {
			return err
		}
	}
	for _, name := range names {
		parts, err := topic.Partitions(ctx, p.dialer, p.cfg.Brokers, name)
		if err != nil {
			return err
		}
		if len(parts) < n {
			return fmt.Errorf("topic %s has %d partitions, the events topic %s %d or more: add them (kafka-topics --alter --topic %s --partitions %d), or set audit.create_topics", name, len(parts), p.cfg.EventsTopic, n, name, n)
		}
		if err := checkCompacted(ctx, p.dialer, p.cfg.Brokers, name); err != nil {
			return err
		}
	}
	p.log.Warn("the audit's topics have the events topic's new partitions", "topics", names, "partitions", n)
	p.outParts.Store(int64(n))
	return nil
}

// onKeyPartition says whether partition is where the agent's producer puts
// key, for one of the partition counts the events topic had.
func (p *Processor) onKeyPartition(key []byte, partition int) (bool, int) {
	cp := p.counts.Load()
	if cp == nil {
		return true, partition
	}
	counts := *cp
	want := -1
	for _, n := range counts {
		if want = partitionOf(key, n); want == partition {
			return true, want
		}
	}
	return len(counts) == 0, want
}
