package stream

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/bindwatch/bindwatch/audit/findings"
	"github.com/bindwatch/bindwatch/audit/integrity"
)

// backoff is an exponential backoff with jitter: the n-th delay of a run
// of failures is drawn in [d/2, d), d = min·2ⁿ capped at max, so each
// delay is at least the one before it until the cap. reset starts over
// (after a success).
type backoff struct {
	min, max time.Duration
	n        int
	rand     func() float64 // in [0, 1); rand.Float64 when nil
}

func (b *backoff) next() time.Duration {
	d := b.max
	if b.n < 62 {
		if x := b.min << b.n; x > 0 && x < b.max {
			d = x
			b.n++
		}
	}
	r := b.rand
	if r == nil {
		r = rand.Float64
	}
	return d/2 + time.Duration(r()*float64(d/2))
}

func (b *backoff) reset() { b.n = 0 }

// Backoff bounds: registry look-ups and output writes that fail for a
// reason that may pass are retried after 50–100 ms, then twice as long
// each time, up to 15–30 s.
const (
	retryMin = 100 * time.Millisecond
	retryMax = 30 * time.Second
)

func (p *Processor) newBackoff() backoff {
	return backoff{min: retryMin, max: retryMax, rand: p.jitter}
}

// sleepCtx waits d, or less when ctx ends (its error then).
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// writeClass is what a failed output write calls for.
type writeClass int

const (
	// writeRetry: the brokers may take it later (no leader, not enough
	// replicas, a timeout, the network): written again after a backoff,
	// nothing committed past it meanwhile.
	writeRetry writeClass = iota
	// writeSetAside: the brokers refuse the message for what it is
	// (corrupt, too large, an invalid record or timestamp, a policy):
	// writing it again cannot pass, and it is set aside.
	writeSetAside
	// writeFatal: the brokers refuse the topic or the client (not
	// authorized, no such topic, a bad request): no message of it can be
	// written, the partition stops and says so until it passes.
	writeFatal
)

func classifyWrite(err error) writeClass {
	var tooLarge kafka.MessageTooLargeError
	if errors.As(err, &tooLarge) {
		return writeSetAside
	}
	var ke kafka.Error
	if errors.As(err, &ke) {
		switch ke {
		case kafka.InvalidMessage, // CORRUPT_MESSAGE (also a null key on a compacted topic, before Kafka 2.8)
			kafka.InvalidMessageSize,
			kafka.MessageSizeTooLarge,
			kafka.RecordListTooLarge,
			kafka.InvalidTimestamp,
			kafka.InvalidRecord,
			kafka.PolicyViolation,
			kafka.UnsupportedForMessageFormat:
			return writeSetAside
		}
		if ke.Temporary() {
			return writeRetry
		}
		return writeFatal // authorization, an invalid topic, required acks, versions...
	}
	// Not an answer of the brokers: the network, a timeout.
	return writeRetry
}

// firstFailure is the index of the first message a WriteMessages error
// says failed, and why; every message before it was written.
func firstFailure(err error, n int) (int, error) {
	var we kafka.WriteErrors
	if errors.As(err, &we) && len(we) == n {
		for i, e := range we {
			if e != nil {
				return i, e
			}
		}
	}
	return 0, err
}

// origin is the host whose record made an output message, for the finding
// that reports the message set aside.
type origin struct {
	hostID, host, bootID string
	seq                  int64
	at                   time.Time
}

func findingOrigin(f *findings.Finding) *origin {
	return &origin{hostID: f.HostID, host: f.Host, bootID: f.BootID, seq: f.Seq, at: f.Time}
}

// maxAsideRun is how many messages of a topic in a row, with none of it
// written between them, the brokers may refuse for what they are before the partition
// stops: refusing them all is a setting of the topic or the brokers (a
// timestamp bound the clock is outside of, a policy), not one message's
// fault, and setting everything aside would drop the audit's output.
var maxAsideRun = 100

// refusedMsg is an output message the brokers refused for what it is.
type refusedMsg struct {
	msg kafka.Message
	err error
}

// publish writes msgs in their order. A message the brokers refuse for
// what it is is set aside (returned), and the others written: a refusal is
// of a whole record batch, so the messages from the first refused one are
// halved until the refused ones stand alone. A failure that may pass is
// retried with backoff for as long as ctx lasts, from the first message
// not written (a message of a later batch that was written is written
// again: the topics keep the last record per key, so the order matters, a
// duplicate does not). Any other failure is returned: nothing after it is
// written, and the caller commits nothing.
func (pc *partition) publish(ctx context.Context, msgs []kafka.Message) ([]refusedMsg, error) {
	p := pc.p
	var aside []refusedMsg
	bo := p.newBackoff()
	retrying := false
	defer func() {
		if retrying {
			p.failing.Add(-1)
		}
	}()
	todo := [][]kafka.Message{msgs}
	for len(todo) > 0 {
		run := todo[0]
		err := p.writer.WriteMessages(ctx, run...)
		i, cause := len(run), error(nil)
		if err != nil {
			i, cause = firstFailure(err, len(run))
		}
		if len(pc.asideRun) > 0 {
			for _, m := range run[:i] {
				delete(pc.asideRun, m.Topic)
			}
		}
		if err == nil {
			todo = todo[1:]
			continue
		}
		run = run[i:]
		switch classifyWrite(cause) {
		case writeFatal:
			return aside, fmt.Errorf("writing to %s: %w", run[0].Topic, cause)
		case writeSetAside:
			if len(run) == 1 {
				if pc.asideRun == nil {
					pc.asideRun = map[string]int{}
				}
				if pc.asideRun[run[0].Topic]++; pc.asideRun[run[0].Topic] > maxAsideRun {
					return aside, fmt.Errorf("writing to %s: the brokers refused %d messages of it in a row, none written between them: not one message's fault, the topic's (%w)", run[0].Topic, pc.asideRun[run[0].Topic], cause)
				}
				aside = append(aside, refusedMsg{run[0], cause})
				todo = todo[1:]
				continue
			}
			half := len(run) / 2
			todo = append([][]kafka.Message{run[:half], run[half:]}, todo[1:]...)
		default:
			if ctx.Err() != nil {
				return aside, fmt.Errorf("writing to %s: %w", run[0].Topic, cause)
			}
			if !retrying {
				retrying = true
				p.failing.Add(1)
			}
			p.Metrics.writeRetries.WithLabelValues(run[0].Topic).Inc()
			d := bo.next()
			if now := time.Now(); now.Sub(pc.retryLogged) >= time.Second {
				pc.retryLogged = now
				p.log.Warn("writing failed; retrying", "partition", pc.id, "topic", run[0].Topic, "messages", len(run), "in", d.Round(time.Millisecond), "err", cause)
			}
			if err := p.sleep(ctx, d); err != nil {
				return aside, fmt.Errorf("writing to %s: %w", run[0].Topic, cause)
			}
			todo[0] = run
		}
	}
	return aside, nil
}

// setAside counts output messages the brokers refused and reports each
// as an integrity finding of the host whose record made it (one open
// finding per host: the log line comes with a new one).
func (pc *partition) setAside(out []findings.Finding, aside []refusedMsg) []findings.Finding {
	for _, r := range aside {
		pc.p.Metrics.setAside.WithLabelValues(r.msg.Topic, integrity.ReasonRefused).Inc()
		o, _ := r.msg.WriterData.(*origin)
		if o == nil {
			pc.p.log.Error("the brokers refused a message: set aside", "partition", pc.id, "topic", r.msg.Topic, "bytes", len(r.msg.Key)+len(r.msg.Value), "err", r.err)
			continue
		}
		out = pc.refuse(out, integrity.Problem{HostID: o.hostID, Host: o.host, BootID: o.bootID, Seq: o.seq, Time: o.at,
			Reason: integrity.ReasonRefused, Detail: fmt.Sprintf("a record of the host (seq %d) made a %s message of %d bytes the brokers refused (%v): set aside, the partition goes on without it",
				o.seq, r.msg.Topic, len(r.msg.Key)+len(r.msg.Value), r.err)})
	}
	return out
}
