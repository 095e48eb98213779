package policy

import (
	"net/netip"
	"testing"
)

// BenchmarkAllowed1000 evaluates listeners against 1 000 rules: half match
// an indexed rule, half match nothing and so try every unindexed rule.
func BenchmarkAllowed1000(b *testing.B) {
	p, err := Parse("bench.yaml", []byte(bigPolicy(1000)))
	if err != nil {
		b.Fatal(err)
	}
	ls := make([]Listener, 256)
	for i := range ls {
		l := base()
		l.Addr = netip.MustParseAddr("192.0.2.7")
		l.Exposure = "specific"
		if i%2 == 0 {
			l.Exe, l.Port = "/usr/sbin/d502", 1502
		} else {
			l.Exe, l.Port = "/usr/bin/nc", 4000+i
		}
		ls[i] = l
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p.Allowed(&ls[i&255])
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "evals/s")
}
