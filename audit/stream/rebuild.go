package stream

import (
	"context"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/bindwatch/bindwatch/audit/findings"
	"github.com/bindwatch/bindwatch/audit/record"
	"github.com/bindwatch/bindwatch/audit/state"
	"github.com/bindwatch/bindwatch/schemas"
)

// readPartition calls fn with every message of one partition, oldest
// first, up to the end it had when called. The topic may not be compacted
// yet (or ever, on a test cluster): callers keep the latest value per key.
func readPartition(ctx context.Context, d *kafka.Dialer, brokers []string, name string, part int, fn func(kafka.Message) error) error {
	first, last, err := offsets(ctx, d, brokers, name, part)
	if err != nil {
		return err
	}
	if last <= first {
		return nil
	}
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers: brokers, Topic: name, Partition: part, Dialer: d,
		MinBytes: 1, MaxBytes: 16 << 20, MaxWait: 100 * time.Millisecond,
	})
	defer r.Close()
	if err := r.SetOffset(first); err != nil {
		return err
	}
	for {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			return fmt.Errorf("reading %s partition %d: %w", name, part, err)
		}
		if err := fn(m); err != nil {
			return err
		}
		if m.Offset >= last-1 {
			return nil
		}
	}
}

func offsets(ctx context.Context, d *kafka.Dialer, brokers []string, name string, part int) (first, last int64, err error) {
	var errs []error
	for _, b := range brokers {
		conn, err := d.DialLeader(ctx, "tcp", b, name, part)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		first, last, err = conn.ReadOffsets()
		conn.Close()
		if err == nil {
			return first, last, nil
		}
		errs = append(errs, err)
	}
	return 0, 0, fmt.Errorf("offsets of %s partition %d: %v", name, part, errs)
}

// RebuildStats says what a rebuild read.
type RebuildStats struct {
	StateRecords, FindingRecords int
	Listeners, Hosts, Open       int
}

// Rebuild reads one partition of the state and findings topics into a
// table and a tracker.
func Rebuild(ctx context.Context, d *kafka.Dialer, brokers []string, stateTopic, findingsTopic string, part int,
	codec *record.Codec, tb *state.Table, tr *findings.Tracker) (RebuildStats, error) {
	var st RebuildStats
	latest := map[string][]byte{}
	strs := map[string]string{}
	var order []string
	err := readPartition(ctx, d, brokers, stateTopic, part, func(m kafka.Message) error {
		st.StateRecords++
		k := string(m.Key)
		if _, seen := latest[k]; !seen {
			order = append(order, k)
		}
		latest[k] = m.Value // nil: a tombstone
		return nil
	})
	if err != nil {
		return st, err
	}
	// Hosts first, so listeners of an old boot a crash left without their
	// tombstones are dropped.
	var listeners []*state.Listener
	for _, k := range order {
		v := latest[k]
		if v == nil {
			continue
		}
		s, err := codec.DecodeState(v)
		if err != nil {
			return st, fmt.Errorf("%s partition %d key %q: %w", stateTopic, part, k, err)
		}
		if s.Record == schemas.StateHost {
			tb.Restore(record.HostFrom(&s))
			continue
		}
		l := record.ListenerFrom(&s, k)
		// Most text repeats across a host's listeners and across hosts:
		// keep one copy.
		for _, p := range []*string{&l.Host, &l.HostID, &l.BootID, &l.Comm, &l.Exe, &l.Protocol, &l.Family, &l.Addr, &l.Exposure, &l.Runtime} {
			*p = intern(strs, *p)
		}
		listeners = append(listeners, l)
	}
	for _, l := range listeners {
		h := tb.Hosts[l.HostID]
		if h == nil || h.BootID != l.BootID {
			continue
		}
		h.Put(l)
		st.Listeners++
	}
	st.Hosts = len(tb.Hosts)

	err = readPartition(ctx, d, brokers, findingsTopic, part, func(m kafka.Message) error {
		st.FindingRecords++
		if m.Value == nil {
			return nil
		}
		f, err := codec.DecodeFinding(m.Value)
		if err != nil {
			return fmt.Errorf("%s partition %d offset %d: %w", findingsTopic, part, m.Offset, err)
		}
		tr.Restore(f)
		return nil
	})
	if err != nil {
		return st, err
	}
	tr.Recount(tb)
	st.Open = tr.OpenCount()
	return st, nil
}

func intern(m map[string]string, s string) string {
	if t, ok := m[s]; ok {
		return t
	}
	m[s] = s
	return s
}
