package pipeline

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/bindwatch/bindwatch/internal/spool"
	"github.com/bindwatch/bindwatch/schemas"
	"github.com/bindwatch/bindwatch/schemas/codec"
)

// startRegisterTimeout bounds how long start waits for the registry before
// capture starts without the id; the id is then asked for in the background.
const startRegisterTimeout = 5 * time.Second

// schemaRegistry gives the messages framed before the registry answered
// (codec.NewConfluentPending) their real schema id, just before they are
// sent: until it is known they wait in the spool. It asks the registry in
// the background, with backoff, for every schema version such a message
// names (an agent restarted with another schema.version may find spooled
// messages of the previous one).
type schemaRegistry struct {
	dir, url, subject string
	log               *slog.Logger
	// report, when set, follows whether the registry gave every id needed.
	report func(error)

	mu   sync.Mutex
	ids  map[int]int  // schema version → registry id
	want map[int]bool // versions needed and not known
	wake chan struct{}
}

func newSchemaRegistry(dir, url, subject string, log *slog.Logger) *schemaRegistry {
	return &schemaRegistry{dir: dir, url: url, subject: subject, log: log,
		ids: map[int]int{}, want: map[int]bool{}, wake: make(chan struct{}, 1)}
}

func (r *schemaRegistry) set(version, id int) {
	r.mu.Lock()
	r.ids[version] = id
	delete(r.want, version)
	r.mu.Unlock()
}

// ask records that version's id is needed and, the first time, wakes the
// background loop (later asks wait for its backoff).
func (r *schemaRegistry) ask(version int) {
	r.mu.Lock()
	_, known := r.ids[version]
	fresh := !known && !r.want[version]
	if fresh {
		r.want[version] = true
	}
	r.mu.Unlock()
	if !fresh {
		return
	}
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// prepare writes the real schema id into messages framed with a
// placeholder; it fails, leaving them to be retried, while one is unknown.
func (r *schemaRegistry) prepare(msgs []spool.Message) error {
	for i := range msgs {
		v, ok := codec.PendingVersion(msgs[i].Value)
		if !ok {
			continue
		}
		r.mu.Lock()
		id, known := r.ids[v]
		r.mu.Unlock()
		if !known {
			r.ask(v)
			return fmt.Errorf("schema registry %s has not given the id of schema v%d under %s yet", r.url, v, r.subject)
		}
		if err := codec.SetSchemaID(msgs[i].Value, id); err != nil {
			return err
		}
	}
	return nil
}

// run asks the registry for the ids wanted until ctx is done.
func (r *schemaRegistry) run(ctx context.Context) error {
	const minBackoff, maxBackoff = time.Second, 30 * time.Second
	backoff := minBackoff
	for {
		select {
		case <-r.wake: // asked for what is read just below
		default:
		}
		r.mu.Lock()
		var versions []int
		for v := range r.want {
			versions = append(versions, v)
		}
		r.mu.Unlock()
		slices.Sort(versions)
		var failed error
		for _, v := range versions {
			text, err := schemas.BindEventSchema(v)
			if err != nil {
				r.log.Error("spooled messages name a schema version this agent does not have; they cannot be sent",
					"component", "agent", "version", v, "error", err)
				failed = err
				continue
			}
			id, err := registerSchema(ctx, r.dir, r.url, r.subject, text, r.log)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				r.log.Warn("schema registry still unreachable; events wait in the spool", "component", "agent",
					"registry", r.url, "subject", r.subject, "version", v, "retry_in", backoff, "error", err)
				failed = fmt.Errorf("schema registry %s: %w", r.url, err)
				continue
			}
			r.log.Info("schema registry answered; spooled events get their schema id", "component", "agent",
				"subject", r.subject, "version", v, "id", id)
			r.set(v, id)
		}
		if r.report != nil {
			r.report(failed)
		}
		wait := backoff
		if failed == nil {
			wait = time.Hour // until asked
			backoff = minBackoff
		} else {
			backoff = min(2*backoff, maxBackoff)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-r.wake:
		case <-t.C:
		}
		t.Stop()
	}
}
