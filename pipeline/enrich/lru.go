package enrich

// lru is a size-capped map that evicts the least recently used entry when a
// new key would exceed the cap. Hits move the entry to the front without
// allocating; an insertion past the cap reuses the evicted entry, so a full
// cache stops allocating for its bookkeeping. It is not safe for concurrent
// use: the enricher owns it from one goroutine.
type lru[K comparable, V any] struct {
	max  int
	m    map[K]*lruEntry[K, V]
	root lruEntry[K, V] // sentinel: root.next is the most recent, root.prev the least
}

type lruEntry[K comparable, V any] struct {
	key        K
	val        V
	prev, next *lruEntry[K, V]
}

func newLRU[K comparable, V any](max int) *lru[K, V] {
	if max < 1 {
		max = 1
	}
	// Grows with use up to max, like internTable, rather than resident at max.
	c := &lru[K, V]{max: max, m: map[K]*lruEntry[K, V]{}}
	c.root.next = &c.root
	c.root.prev = &c.root
	return c
}

// get returns a pointer to the cached value, valid until the next put.
func (c *lru[K, V]) get(k K) (*V, bool) {
	e, ok := c.m[k]
	if !ok {
		return nil, false
	}
	c.moveToFront(e)
	return &e.val, true
}

// put stores v under k and returns a pointer to the stored value.
func (c *lru[K, V]) put(k K, v V) *V {
	if e, ok := c.m[k]; ok {
		e.val = v
		c.moveToFront(e)
		return &e.val
	}
	var e *lruEntry[K, V]
	if len(c.m) >= c.max {
		e = c.root.prev
		c.unlink(e)
		delete(c.m, e.key)
	} else {
		e = new(lruEntry[K, V])
	}
	e.key, e.val = k, v
	c.m[k] = e
	c.pushFront(e)
	return &e.val
}

func (c *lru[K, V]) len() int { return len(c.m) }

func (c *lru[K, V]) moveToFront(e *lruEntry[K, V]) {
	if c.root.next == e {
		return
	}
	c.unlink(e)
	c.pushFront(e)
}

func (c *lru[K, V]) unlink(e *lruEntry[K, V]) {
	e.prev.next = e.next
	e.next.prev = e.prev
	e.prev, e.next = nil, nil
}

func (c *lru[K, V]) pushFront(e *lruEntry[K, V]) {
	e.prev = &c.root
	e.next = c.root.next
	c.root.next.prev = e
	c.root.next = e
}
