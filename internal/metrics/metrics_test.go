package metrics

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	b, _ := io.ReadAll(rec.Body)
	return rec.Code, string(b)
}

func TestMetricsSeries(t *testing.T) {
	m := New(BuildInfo{Version: "v1.2.3", Revision: "abc", GoVersion: "go1.26"}, "tracepoint", func() Snapshot {
		return Snapshot{KernelEvents: 10, Captured: 9, Published: 7, Spooled: 2, Replayed: 1, WriteErrors: 3, SpoolBytes: 4096,
			Dropped:       map[string]uint64{"ring_buffer_full": 1, "queue_full": 4, "no_socket": 8, "spool_full": 5},
			DroppedByKind: map[string]map[string]uint64{"ring_reserved": {"bind": 2}, "spool_full": {"bind": 4, "snapshot": 1}},
			CgroupLookups: map[string]uint64{"miss": 6, "deferred": 5}, CgroupScans: 2, WorkloadPending: 3, WorkloadLate: map[string]uint64{"found": 1}, CRIPending: map[string]uint64{"image_digest": 2},
			RecordOrder: map[string]uint64{"held": 7, "late": 1}, OrderWait: 1500 * time.Millisecond}
	})
	m.EventLatency.Observe(0.03)
	m.BatchSize.Observe(500)
	code, body := get(t, m.Handler(NewHealth()), "/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	for _, want := range []string{
		"bindwatch_kernel_events_total 10",
		"bindwatch_events_captured_total 9",
		"bindwatch_events_published_total 7",
		"bindwatch_events_spooled_total 2",
		"bindwatch_events_replayed_total 1",
		"bindwatch_kafka_write_errors_total 3",
		"bindwatch_spool_bytes 4096",
		`bindwatch_events_dropped_total{reason="ring_buffer_full"} 1`,
		`bindwatch_events_dropped_total{reason="queue_full"} 4`,
		`bindwatch_events_dropped_total{reason="no_socket"} 8`,
		`bindwatch_events_dropped_total{reason="pending_full"} 0`,
		`bindwatch_events_dropped_total{reason="spool_full"} 5`,
		`bindwatch_events_dropped_by_kind_total{kind="bind",reason="ring_reserved"} 2`,
		`bindwatch_events_dropped_by_kind_total{kind="listen",reason="ring_buffer_full"} 0`,
		`bindwatch_events_dropped_by_kind_total{kind="bind",reason="spool_full"} 4`,
		`bindwatch_events_dropped_by_kind_total{kind="snapshot",reason="spool_full"} 1`,
		`bindwatch_events_dropped_by_kind_total{kind="listen",reason="spool_full"} 0`,
		`bindwatch_events_dropped_by_kind_total{kind="unknown",reason="spool_corrupt"} 0`,
		`bindwatch_events_dropped_total{reason="encode_error"} 0`,
		`bindwatch_cgroup_lookups_total{result="miss"} 6`,
		`bindwatch_cgroup_lookups_total{result="deferred"} 5`,
		`bindwatch_cgroup_lookups_total{result="queue_full"} 0`,
		"bindwatch_cgroup_scans_total 2",
		"bindwatch_workload_pending_records_total 3",
		`bindwatch_workload_late_total{result="found"} 1`,
		`bindwatch_workload_late_total{result="given_up"} 0`,
		`bindwatch_workload_cri_pending_records_total{field="image_digest"} 2`,
		`bindwatch_workload_cri_pending_records_total{field="pod_labels"} 0`,
		`bindwatch_record_order_total{result="held"} 7`,
		`bindwatch_record_order_total{result="expired"} 0`,
		`bindwatch_record_order_total{result="late"} 1`,
		"bindwatch_record_order_wait_seconds_total 1.5",
		`bindwatch_build_info{goversion="go1.26",revision="abc",version="v1.2.3"} 1`,
		`bindwatch_hook_info{hook="tracepoint"} 1`,
		"bindwatch_event_delivery_seconds_count 1",
		`bindwatch_batch_events_bucket{le="512"} 1`,
		"bindwatch_kafka_write_seconds_count 0",
		"go_goroutines",
	} {
		if !strings.Contains(body, want+"\n") && !strings.Contains(body, want+" ") {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func TestHealth(t *testing.T) {
	h := NewHealth("capture", "kafka")
	m := New(BuildInfo{}, "fexit", func() Snapshot { return Snapshot{} })
	handler := m.Handler(h)
	if code, body := get(t, handler, "/healthz"); code != 503 || body != "capture: not started\nkafka: not started\n" {
		t.Fatalf("before start: %d %q", code, body)
	}
	if code, _ := get(t, handler, "/readyz"); code != 503 {
		t.Fatalf("/readyz before start: %d", code)
	}
	h.Set("capture", nil)
	h.Set("kafka", nil)
	h.SetReady(true)
	if code, body := get(t, handler, "/healthz"); code != 200 || body != "ok\n" {
		t.Fatalf("healthy: %d %q", code, body)
	}
	if code, _ := get(t, handler, "/readyz"); code != 200 {
		t.Fatalf("/readyz: %d", code)
	}
	h.Set("kafka", errors.New("dial tcp 127.0.0.1:9092: connection refused"))
	if code, body := get(t, handler, "/healthz"); code != 503 || !strings.Contains(body, "kafka: dial tcp 127.0.0.1:9092: connection refused") {
		t.Fatalf("kafka down: %d %q", code, body)
	}
}
