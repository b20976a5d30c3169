package checkpoint

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// DefaultLeaseTTL is how long a lease outlives its holder's last refresh.
const DefaultLeaseTTL = 30 * time.Second

// LeaseBucket is the bucket of the leases on the checkpoints of bucket.
func LeaseBucket(bucket string) string { return bucket + "_leases" }

// Lease is an exclusive hold on some streams' checkpoints in a shared store (a
// NATS KV bucket): one key per stream in a separate lease bucket, made with
// Create (which fails when the key exists) and refreshed every TTL/3. The
// bucket's MaxAge is the TTL (nats-server 2.9 has no per-key TTL, hence a
// bucket of its own): a holder that dies without releasing loses its keys
// after at most TTL, and another process can take them.
type Lease struct {
	kv     jetstream.KeyValue
	bucket string
	holder string
	ttl    time.Duration

	mu   sync.Mutex
	revs map[string]uint64 // stream -> revision of our value

	lost     chan struct{}
	lostErr  error
	lostOnce sync.Once
	stop     context.CancelFunc
	done     chan struct{}
}

// AcquireLease takes the lease of every stream in the lease bucket of bucket
// (creating it with MaxAge ttl; ttl <= 0 means DefaultLeaseTTL), or none: when
// another process holds one, what was taken is released and the error is a
// *HeldError naming the holder. The lease is refreshed in the background until
// Release; Lost is closed if it cannot be (another process took it after a
// refresh failed for longer than ttl).
func AcquireLease(ctx context.Context, js jetstream.JetStream, bucket string, streams []string, ttl time.Duration) (*Lease, error) {
	if js == nil {
		return nil, errors.New("checkpoint: lease: no JetStream context")
	}
	if ttl <= 0 {
		ttl = DefaultLeaseTTL
	}
	lb := LeaseBucket(bucket)
	kv, err := js.KeyValue(ctx, lb)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:      lb,
			Description: "restless-ingest: which process owns the checkpoints of " + bucket,
			History:     1,
			TTL:         ttl,
			Storage:     jetstream.FileStorage,
		})
		if errors.Is(err, jetstream.ErrBucketExists) {
			kv, err = js.KeyValue(ctx, lb)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("checkpoint: lease bucket %q: %w", lb, err)
	}
	if st, serr := kv.Status(ctx); serr == nil && st.TTL() > 0 {
		ttl = st.TTL() // the bucket's, when it already existed
	}
	l := &Lease{kv: kv, bucket: bucket, holder: holderID(), ttl: ttl, revs: map[string]uint64{},
		lost: make(chan struct{}), done: make(chan struct{})}
	for _, s := range streams {
		if err := ValidateStream(s); err != nil {
			l.releaseKeys()
			return nil, err
		}
		rev, err := kv.Create(ctx, s, []byte(l.holder))
		if err != nil {
			l.releaseKeys()
			if errors.Is(err, jetstream.ErrKeyExists) {
				holder := "a process whose lease just ended"
				if e, gerr := kv.Get(ctx, s); gerr == nil {
					holder = sanitizeHolder(string(e.Value()))
				}
				return nil, &HeldError{What: fmt.Sprintf("stream %s in nats_kv bucket %s", s, bucket), Holder: holder}
			}
			return nil, fmt.Errorf("checkpoint: lease of stream %q in bucket %q: %w", s, lb, err)
		}
		l.revs[s] = rev
	}
	rctx, cancel := context.WithCancel(context.Background())
	l.stop = cancel
	go l.refresh(rctx)
	return l, nil
}

// Holder is how this lease names its process.
func (l *Lease) Holder() string { return l.holder }

// TTL is the lease bucket's MaxAge.
func (l *Lease) TTL() time.Duration { return l.ttl }

// Lost is closed when the lease was lost; Err then says why.
func (l *Lease) Lost() <-chan struct{} { return l.lost }

// Err is why the lease was lost, or nil.
func (l *Lease) Err() error {
	select {
	case <-l.lost:
		return l.lostErr
	default:
		return nil
	}
}

func (l *Lease) refresh(ctx context.Context) {
	defer close(l.done)
	t := time.NewTicker(l.ttl / 3)
	defer t.Stop()
	lastOK := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := l.refreshOnce(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			var held *HeldError
			if errors.As(err, &held) || time.Since(lastOK) > l.ttl {
				l.lostOnce.Do(func() { l.lostErr = err; close(l.lost) })
				return
			}
			continue // a passing failure: the next tick tries again
		}
		lastOK = time.Now()
	}
}

func (l *Lease) refreshOnce(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for s, rev := range l.revs {
		cctx, cancel := context.WithTimeout(ctx, l.ttl/3)
		nrev, err := l.kv.Update(cctx, s, []byte(l.holder), rev)
		cancel()
		if err != nil {
			if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists) {
				holder := "a process unknown (the key expired)"
				if e, gerr := l.kv.Get(ctx, s); gerr == nil {
					holder = sanitizeHolder(string(e.Value()))
				}
				return &HeldError{What: fmt.Sprintf("stream %s in nats_kv bucket %s", s, l.bucket), Holder: holder}
			}
			return fmt.Errorf("checkpoint: refresh the lease of stream %q: %w", s, err)
		}
		l.revs[s] = nrev
	}
	return nil
}

// Release stops refreshing and deletes the keys still ours, so that another
// process may start at once instead of after the TTL.
func (l *Lease) Release() {
	if l == nil {
		return
	}
	if l.stop != nil {
		l.stop()
		<-l.done
	}
	l.releaseKeys()
}

func (l *Lease) releaseKeys() {
	l.mu.Lock()
	defer l.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for s, rev := range l.revs {
		_ = l.kv.Delete(ctx, s, jetstream.LastRevision(rev)) // only if still ours
		delete(l.revs, s)
	}
}
