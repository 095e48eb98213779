package stream

import (
	"context"
	"fmt"
	auditconfig "github.com/bindwatch/bindwatch/audit/config"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/bindwatch/bindwatch/audit/findings"
	"github.com/bindwatch/bindwatch/schemas"
	"github.com/bindwatch/bindwatch/schemas/codec"
	"github.com/bindwatch/bindwatch/test/kafkatest"
)

// A registry that answers 503 at first does not make the audit skip the
// records it cannot decode yet (F5): they are read again, not committed
// past, and judged once it answers.
func TestRegistryOutageIsRetried(t *testing.T) {
	cl, cfg, prod, refused := registryBehind503s(t, 3)
	in := startInstance(t, cfg)

	h := &fakeHost{id: "registry-host", name: "r-1", boot: "b"}
	prod.send(h.ev("listen", "/usr/bin/nc", "TCP", "0.0.0.0", 4444, 1))
	waitFindings(t, cl.Addrs, cfg.FindingsTopic, "the listener judged after the registry answered", func(log map[string][]findings.Finding) error {
		if s := states(log[findings.ListenerID(h.id, ptrTrue(), 4026531840, "TCP", "0.0.0.0", 4444)]); s != "open " {
			return fmt.Errorf("4444: %q", s)
		}
		return nil
	}, cfg.RegistryURL)
	if n := counter(t, in.p, "bindwatch_audit_events_total", "undecodable"); n != 0 {
		t.Errorf("%v records skipped as undecodable while the registry was down", n)
	}
	t.Logf("registry refused %d look-ups first; retried %v times", min(refused.Load(), 3), counter(t, in.p, "bindwatch_audit_events_total", "registry_unavailable"))
}

// registryBehind503s is a cluster with the events topic, a registry behind
// a front whose first n lookups of a schema by id answer 503, the audit's
// configuration pointed at that front, and a producer writing the Confluent
// framing with the id the registry gave; refused counts the lookups.
func registryBehind503s(t *testing.T, n int32) (*kafkatest.Cluster, *auditconfig.Config, *producer, *atomic.Int32) {
	t.Helper()
	reg := srfake.New()
	t.Cleanup(reg.Close)
	refused := new(atomic.Int32)
	target, _ := url.Parse(reg.URL())
	proxy := httputil.NewSingleHostReverseProxy(target)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/schemas/ids/") && refused.Add(1) <= n {
			http.Error(w, `{"error_code":50301,"message":"registry warming up"}`, http.StatusServiceUnavailable)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)

	text, _ := schemas.BindEventSchema(schemas.Latest)
	id, err := codec.Register(context.Background(), reg.URL(), "bindwatch.bind-events-value", text)
	if err != nil {
		t.Fatal(err)
	}
	cl := kafkatest.Start(t, kafkatest.Options{Topic: "bindwatch.bind-events", Partitions: 3})
	cfg := testConfig(cl.Addrs)
	cfg.RegistryURL = front.URL
	prod := newProducer(t, cl.Addrs, cfg.EventsTopic)
	if prod.enc, err = codec.NewConfluent([]byte(text), id); err != nil {
		t.Fatal(err)
	}
	return cl, cfg, prod, refused
}
