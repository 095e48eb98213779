package enrich

import "testing"

func TestLRU(t *testing.T) {
	type op struct {
		put  bool
		key  int
		val  string
		want string // for gets: "" means a miss
	}
	tests := []struct {
		name string
		max  int
		ops  []op
	}{
		{"evicts the oldest", 2, []op{
			{put: true, key: 1, val: "a"}, {put: true, key: 2, val: "b"}, {put: true, key: 3, val: "c"},
			{key: 1}, {key: 2, want: "b"}, {key: 3, want: "c"},
		}},
		{"a get refreshes", 2, []op{
			{put: true, key: 1, val: "a"}, {put: true, key: 2, val: "b"}, {key: 1, want: "a"},
			{put: true, key: 3, val: "c"}, {key: 2}, {key: 1, want: "a"}, {key: 3, want: "c"},
		}},
		{"a put of a present key updates and refreshes", 2, []op{
			{put: true, key: 1, val: "a"}, {put: true, key: 2, val: "b"}, {put: true, key: 1, val: "A"},
			{put: true, key: 3, val: "c"}, {key: 1, want: "A"}, {key: 2},
		}},
		{"cap below one holds one", 0, []op{
			{put: true, key: 1, val: "a"}, {put: true, key: 2, val: "b"}, {key: 1}, {key: 2, want: "b"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newLRU[int, string](tt.max)
			for i, o := range tt.ops {
				if o.put {
					if p := c.put(o.key, o.val); *p != o.val {
						t.Fatalf("op %d: put returned %q", i, *p)
					}
					continue
				}
				v, ok := c.get(o.key)
				got := ""
				if ok {
					got = *v
				}
				if got != o.want || ok != (o.want != "") {
					t.Fatalf("op %d: get(%d) = %q, %v; want %q", i, o.key, got, ok, o.want)
				}
			}
			if n, max := c.len(), max(tt.max, 1); n > max {
				t.Errorf("%d entries, cap %d", n, max)
			}
		})
	}
}

// A full cache must not allocate per insertion: it runs on every miss.
func TestLRUSteadyStateAllocs(t *testing.T) {
	c := newLRU[uint64, int](64)
	for i := range uint64(64) {
		c.put(i, 0)
	}
	k := uint64(64)
	allocs := testing.AllocsPerRun(1000, func() {
		c.put(k, 1)
		k++
	})
	if allocs > 0 {
		t.Errorf("%.1f allocs per insertion into a full cache", allocs)
	}
}
