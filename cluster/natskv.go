package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// kvBackend is the part of a JetStream key-value bucket the NATS coordinator
// uses: compare-and-set writes by revision, and a watch. Keys vanish
// silently after the bucket's TTL, without a watch event.
type kvBackend interface {
	Put(ctx context.Context, key string, value []byte) (uint64, error)
	// Create writes key only if it has no value; errConflict otherwise.
	Create(ctx context.Context, key string, value []byte) (uint64, error)
	// Update writes key only if its latest revision is rev; errConflict
	// otherwise (also when the key has expired or been deleted).
	Update(ctx context.Context, key string, value []byte, rev uint64) (uint64, error)
	// Get returns the key's value; errNotFound when it has none.
	Get(ctx context.Context, key string) (kvEntry, error)
	Delete(ctx context.Context, key string) error
	// Watch delivers the current value of every key, then an entry with
	// initDone set, then every change. The channel is closed when the watch
	// ends: ctx done, or the watch failed.
	Watch(ctx context.Context) (<-chan kvEntry, error)
}

type kvEntry struct {
	key      string
	value    []byte
	rev      uint64
	created  time.Time // the server's time of the write
	deleted  bool
	initDone bool
}

var (
	errConflict = errors.New("revision conflict")
	errNotFound = errors.New("key not found")
)

// jsKV adapts a jetstream.KeyValue to kvBackend.
type jsKV struct {
	kv jetstream.KeyValue
	wg sync.WaitGroup
}

func (j *jsKV) Put(ctx context.Context, key string, value []byte) (uint64, error) {
	return j.kv.Put(ctx, key, value)
}

func (j *jsKV) Create(ctx context.Context, key string, value []byte) (uint64, error) {
	rev, err := j.kv.Create(ctx, key, value)
	if errors.Is(err, jetstream.ErrKeyExists) {
		return 0, errConflict
	}
	return rev, err
}

func (j *jsKV) Update(ctx context.Context, key string, value []byte, rev uint64) (uint64, error) {
	n, err := j.kv.Update(ctx, key, value, rev)
	if wrongLastSequence(err) {
		return 0, errConflict
	}
	return n, err
}

// wrongLastSequence reports a compare-and-set failure: JetStream's "wrong
// last sequence" (10071, or 10164 on replicated streams).
func wrongLastSequence(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists) {
		return true
	}
	var api *jetstream.APIError
	return errors.As(err, &api) &&
		(api.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence || api.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

func (j *jsKV) Get(ctx context.Context, key string) (kvEntry, error) {
	e, err := j.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return kvEntry{}, errNotFound
	}
	if err != nil {
		return kvEntry{}, err
	}
	return kvEntry{key: e.Key(), value: e.Value(), rev: e.Revision(), created: e.Created()}, nil
}

func (j *jsKV) Delete(ctx context.Context, key string) error {
	return j.kv.Delete(ctx, key)
}

func (j *jsKV) Watch(ctx context.Context) (<-chan kvEntry, error) {
	w, err := j.kv.WatchAll(ctx)
	if err != nil {
		return nil, err
	}
	out := make(chan kvEntry, 64)
	j.wg.Go(func() {
		defer close(out)
		defer func() { _ = w.Stop() }()
		for {
			var e jetstream.KeyValueEntry
			var ok bool
			select {
			case e, ok = <-w.Updates():
				if !ok {
					return
				}
			case <-ctx.Done():
				return
			}
			var ke kvEntry
			if e == nil {
				ke.initDone = true
			} else {
				ke = kvEntry{key: e.Key(), value: e.Value(), rev: e.Revision(), created: e.Created(),
					deleted: e.Operation() != jetstream.KeyValuePut}
			}
			select {
			case out <- ke:
			case <-ctx.Done():
				return
			}
		}
	})
	return out, nil
}

// wait waits for the watch goroutines, after their contexts ended.
func (j *jsKV) wait() { j.wg.Wait() }

// openBucket opens the coordination bucket, creating it with the lease TTL
// as its MaxAge when missing. Every replica must use the same TTL: a bucket
// with another one is an error naming both.
func openBucket(ctx context.Context, js jetstream.JetStream, bucket string, ttl time.Duration, replicas int) (jetstream.KeyValue, error) {
	kv, err := js.KeyValue(ctx, bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:      bucket,
			Description: "restless-ingest cluster: members and stream leases",
			History:     1,
			TTL:         ttl,
			Storage:     jetstream.FileStorage,
			Replicas:    replicas,
		})
		if errors.Is(err, jetstream.ErrBucketExists) {
			kv, err = js.KeyValue(ctx, bucket)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("cluster: nats: bucket %q: %w", bucket, err)
	}
	st, err := kv.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("cluster: nats: bucket %q: status: %w", bucket, err)
	}
	if st.TTL() != ttl {
		return nil, fmt.Errorf("cluster: nats: bucket %q expires keys after %v but cluster.lease_ttl is %v: every replica must use the same lease_ttl (to change it, stop every replica and delete the bucket)", bucket, st.TTL(), ttl)
	}
	return kv, nil
}
