package cluster

import (
	"context"
	"sync"
	"time"
)

// fakeBucket is an in-memory JetStream key-value bucket with a bucket TTL,
// for tests under testing/synctest: revisions, compare-and-set, keys that
// vanish silently after the TTL, and watches. Each member talks to it
// through a fakeConn that a test can cut off.
type fakeBucket struct {
	ttl time.Duration

	mu       sync.Mutex
	seq      uint64
	entries  map[string]fakeEntry
	watchers map[*fakeWatch]struct{}
	ops      int // every request, for cost checks
}

type fakeEntry struct {
	value   []byte
	rev     uint64
	at      time.Time
	deleted bool
}

func newFakeBucket(ttl time.Duration) *fakeBucket {
	return &fakeBucket{ttl: ttl, entries: map[string]fakeEntry{}, watchers: map[*fakeWatch]struct{}{}}
}

// live returns key's entry unless it has expired; the caller holds mu.
func (b *fakeBucket) live(key string) (fakeEntry, bool) {
	e, ok := b.entries[key]
	if !ok {
		return e, false
	}
	if time.Since(e.at) >= b.ttl {
		delete(b.entries, key)
		return e, false
	}
	return e, true
}

func (b *fakeBucket) write(key string, value []byte, deleted bool) uint64 {
	b.seq++
	e := fakeEntry{value: append([]byte(nil), value...), rev: b.seq, at: time.Now(), deleted: deleted}
	b.entries[key] = e
	for w := range b.watchers {
		w.push(kvEntry{key: key, value: e.value, rev: e.rev, created: e.at, deleted: deleted})
	}
	return e.rev
}

// holder decodes the lease value of stream s, for assertions.
func (b *fakeBucket) holder(s string) (leaseValue, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, ok := b.live(leasePrefix + s)
	if !ok || e.deleted {
		return leaseValue{}, false
	}
	v, err := decodeLease(e.value)
	return v, err == nil
}

func (b *fakeBucket) opCount() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.ops
}

// fakeWatch queues entries for one watcher without blocking writers.
type fakeWatch struct {
	mu    sync.Mutex
	items []kvEntry
	wake  chan struct{}
}

func (w *fakeWatch) push(e kvEntry) {
	w.mu.Lock()
	w.items = append(w.items, e)
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// fakeConn is one member's connection to a fakeBucket. While cut, every
// request waits for its context to end and the watch delivers nothing.
type fakeConn struct {
	b  *fakeBucket
	mu sync.Mutex
	// open is closed while the connection works; replaced when cut.
	open chan struct{}
	wg   sync.WaitGroup
}

func (b *fakeBucket) conn() *fakeConn {
	c := &fakeConn{b: b, open: make(chan struct{})}
	close(c.open)
	return c
}

func (c *fakeConn) cut() {
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case <-c.open:
		c.open = make(chan struct{})
	default:
	}
}

func (c *fakeConn) heal() {
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case <-c.open:
	default:
		close(c.open)
	}
}

func (c *fakeConn) gate(ctx context.Context) error {
	c.mu.Lock()
	open := c.open
	c.mu.Unlock()
	select {
	case <-open:
		return ctx.Err()
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *fakeConn) Put(ctx context.Context, key string, value []byte) (uint64, error) {
	if err := c.gate(ctx); err != nil {
		return 0, err
	}
	c.b.mu.Lock()
	defer c.b.mu.Unlock()
	c.b.ops++
	return c.b.write(key, value, false), nil
}

func (c *fakeConn) Create(ctx context.Context, key string, value []byte) (uint64, error) {
	if err := c.gate(ctx); err != nil {
		return 0, err
	}
	c.b.mu.Lock()
	defer c.b.mu.Unlock()
	c.b.ops++
	if e, ok := c.b.live(key); ok && !e.deleted {
		return 0, errConflict
	}
	return c.b.write(key, value, false), nil
}

func (c *fakeConn) Update(ctx context.Context, key string, value []byte, rev uint64) (uint64, error) {
	if err := c.gate(ctx); err != nil {
		return 0, err
	}
	c.b.mu.Lock()
	defer c.b.mu.Unlock()
	c.b.ops++
	if e, ok := c.b.live(key); !ok || e.rev != rev {
		return 0, errConflict
	}
	return c.b.write(key, value, false), nil
}

func (c *fakeConn) Get(ctx context.Context, key string) (kvEntry, error) {
	if err := c.gate(ctx); err != nil {
		return kvEntry{}, err
	}
	c.b.mu.Lock()
	defer c.b.mu.Unlock()
	c.b.ops++
	e, ok := c.b.live(key)
	if !ok || e.deleted {
		return kvEntry{}, errNotFound
	}
	return kvEntry{key: key, value: e.value, rev: e.rev, created: e.at}, nil
}

func (c *fakeConn) Delete(ctx context.Context, key string) error {
	if err := c.gate(ctx); err != nil {
		return err
	}
	c.b.mu.Lock()
	defer c.b.mu.Unlock()
	c.b.ops++
	c.b.write(key, nil, true)
	return nil
}

func (c *fakeConn) Watch(ctx context.Context) (<-chan kvEntry, error) {
	if err := c.gate(ctx); err != nil {
		return nil, err
	}
	w := &fakeWatch{wake: make(chan struct{}, 1)}
	c.b.mu.Lock()
	c.b.ops++
	for key := range c.b.entries {
		if e, ok := c.b.live(key); ok {
			w.items = append(w.items, kvEntry{key: key, value: e.value, rev: e.rev, created: e.at, deleted: e.deleted})
		}
	}
	w.items = append(w.items, kvEntry{initDone: true})
	c.b.watchers[w] = struct{}{}
	c.b.mu.Unlock()
	out := make(chan kvEntry)
	c.wg.Go(func() {
		defer close(out)
		defer func() {
			c.b.mu.Lock()
			delete(c.b.watchers, w)
			c.b.mu.Unlock()
		}()
		for {
			w.mu.Lock()
			var e kvEntry
			ok := len(w.items) > 0
			if ok {
				e = w.items[0]
				w.items = w.items[1:]
			}
			w.mu.Unlock()
			if !ok {
				select {
				case <-w.wake:
					continue
				case <-ctx.Done():
					return
				}
			}
			if c.gate(ctx) != nil {
				return
			}
			select {
			case out <- e:
			case <-ctx.Done():
				return
			}
		}
	})
	return out, nil
}
