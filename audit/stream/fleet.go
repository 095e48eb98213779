package stream

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/segmentio/kafka-go"

	"github.com/bindwatch/bindwatch/audit/record"
	"github.com/bindwatch/bindwatch/audit/state"
	"github.com/bindwatch/bindwatch/internal/topic"
	"github.com/bindwatch/bindwatch/schemas"
)

// ReadListeners reads the fleet's current listeners from the state topic:
// every partition up to its end, the latest value per key, tombstones
// honoured, listeners of a boot their host has left dropped. Sorted by
// host, then address and port. registryURL, when set, resolves the ids of
// Confluent-framed records.
func ReadListeners(ctx context.Context, d *kafka.Dialer, brokers []string, stateTopic, registryURL string) ([]*state.Listener, error) {
	codec, err := record.NewCodec()
	if err != nil {
		return nil, err
	}
	if registryURL != "" {
		if err := codec.ReadRegistry(registryURL); err != nil {
			return nil, err
		}
	}
	parts, err := topic.Partitions(ctx, d, brokers, stateTopic)
	if err != nil {
		return nil, err
	}
	var out []*state.Listener
	for _, p := range parts {
		tb := state.New()
		latest := map[string][]byte{}
		var order []string
		err := readPartition(ctx, d, brokers, stateTopic, p.ID, func(m kafka.Message) error {
			k := string(m.Key)
			if _, seen := latest[k]; !seen {
				order = append(order, k)
			}
			latest[k] = m.Value
			return nil
		})
		if err != nil {
			return nil, err
		}
		var ls []*state.Listener
		for _, k := range order {
			if latest[k] == nil {
				continue
			}
			s, err := codec.DecodeState(latest[k])
			if err != nil {
				return nil, fmt.Errorf("%s partition %d key %q: %w", stateTopic, p.ID, k, err)
			}
			if s.Record == schemas.StateHost {
				tb.Restore(record.HostFrom(&s))
			} else {
				ls = append(ls, record.ListenerFrom(&s, k))
			}
		}
		for _, l := range ls {
			if h := tb.Hosts[l.HostID]; h == nil || h.BootID == l.BootID {
				out = append(out, l)
			}
		}
	}
	slices.SortFunc(out, func(a, b *state.Listener) int {
		if c := strings.Compare(a.Host, b.Host); c != 0 {
			return c
		}
		if c := strings.Compare(a.HostID, b.HostID); c != 0 {
			return c
		}
		if c := strings.Compare(a.Addr, b.Addr); c != 0 {
			return c
		}
		if a.Port != b.Port {
			return int(a.Port - b.Port)
		}
		return strings.Compare(a.Key.String(), b.Key.String())
	})
	return out, nil
}
