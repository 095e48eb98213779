package pipeline

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/bindwatch/bindwatch/schemas/codec"
	"github.com/bindwatch/bindwatch/test/kafkatest"
	"github.com/bindwatch/bindwatch/test/testenv"
)

// TestRegistryDownAtFirstStart (issue item 6): the registry answers 503 when
// an agent starts for the first time (no id remembered). The agent must
// start anyway, capture, keep the events in the spool, and once the registry
// answers publish them with the id it gives.
func TestRegistryDownAtFirstStart(t *testing.T) {
	testenv.RequireRoot(t)
	const topic = "registry-down"
	cluster := kafkatest.Start(t, kafkatest.Options{Brokers: 1, Topic: topic, Partitions: 1})
	reg := srfake.New()
	t.Cleanup(reg.Close)
	target, err := url.Parse(reg.URL())
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	var down atomic.Bool
	down.Store(true)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			http.Error(w, `{"error_code":50301,"message":"registry restarting"}`, http.StatusServiceUnavailable)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)

	cfg := testConfig(t, cluster.Addrs, topic)
	cfg.Schema.RegistryURL = front.URL
	agent := runAgent(t, &cfg, testLogger(t))
	first, err := agent.Probe().NextSeq()
	if err != nil {
		t.Fatal(err)
	}
	const n = 200
	for range n {
		if err := bindOnce(); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Eventually(t, "every event spooled", 15*time.Second, func() bool { return agent.Stats().Publish.Spooled.Load() >= n })
	if got := kafkatest.Count(t, cluster.Addrs, topic); got != 0 {
		t.Fatalf("%d messages reached Kafka without a schema id", got)
	}
	if p := agent.health.Problems(); len(p) == 0 {
		t.Error("health is green while the registry has not given the schema id")
	}

	down.Store(false)
	testenv.Eventually(t, "the spool drained and every event published", 30*time.Second, func() bool {
		k, _ := agent.spool.Len()
		return k == 0 && agent.Stats().Publish.Published.Load() >= n
	})
	agent.stop(t)

	dec, err := codec.NewDecoder(front.URL)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[uint64]bool{}
	for _, m := range kafkatest.ReadAll(t, cluster.Addrs, topic, int(kafkatest.Count(t, cluster.Addrs, topic)), 20*time.Second) {
		rec, err := dec.Decode(context.Background(), m.Value)
		if err != nil {
			t.Fatalf("decoding with the registry: %v", err)
		}
		b, _ := rec.MarshalJSON()
		var v struct {
			Seq uint64 `json:"seq"`
		}
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatal(err)
		}
		seen[v.Seq] = true
	}
	var missing []uint64
	for s := first; s < first+n; s++ {
		if !seen[s] {
			missing = append(missing, s-first)
		}
	}
	if len(missing) > 0 {
		t.Fatalf("%d of %d events missing, the first (from the test's first bind): %v", len(missing), n, missing[:min(10, len(missing))])
	}
}
