package pipeline

import (
	"maps"
	"slices"
	"testing"

	"github.com/bindwatch/bindwatch/internal/metrics"
	"github.com/bindwatch/bindwatch/internal/spool"
	"github.com/bindwatch/bindwatch/pipeline/publish"
	"github.com/bindwatch/bindwatch/schemas"
)

// TestSpoolDropsByKind: the spool's drops by kind reach the metric under
// its reasons (full_oldest, full_newest and too_large are spool_full) and
// its kind names, and every spool kind is a label value of the metric.
func TestSpoolDropsByKind(t *testing.T) {
	var st spool.Stats
	bind, listen := publish.SpoolKind(schemas.KindBind), publish.SpoolKind(schemas.KindListen)
	st.DroppedByKind[spool.FullOldest][bind] = 500
	st.DroppedByKind[spool.FullNewest][bind] = 7
	st.DroppedByKind[spool.FullOldest][listen] = 1
	st.DroppedByKind[spool.Corrupt][spool.KindUnknown] = 3
	got := map[string]map[string]uint64{}
	addSpoolDropsByKind(got, st)
	want := map[string]map[string]uint64{
		"spool_full":    {"bind": 507, "listen": 1},
		"spool_corrupt": {"unknown": 3},
	}
	if !maps.EqualFunc(got, want, maps.Equal) {
		t.Fatalf("drops by kind %v, want %v", got, want)
	}
	for _, name := range publish.SpoolKinds {
		if !slices.Contains(metrics.SpoolDropKinds, name) {
			t.Errorf("spool kind %q is not a kind label of the spool's drops", name)
		}
	}
}
