package checkpoint

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/nats-io/nats.go/jetstream"
)

// NATSKV is a Store backed by a JetStream key-value bucket: one key per
// stream, the cursor as the value. JetStream replicates and persists the
// bucket, so checkpoints survive the loss of the daemon's disk.
type NATSKV struct {
	kv     jetstream.KeyValue
	closed atomic.Bool
}

var _ Store = (*NATSKV)(nil)

// NewNATSKV opens bucket through js, creating it (file storage, history 1)
// when it does not exist. The store does not own the connection behind js.
func NewNATSKV(ctx context.Context, js jetstream.JetStream, bucket string) (*NATSKV, error) {
	if js == nil {
		return nil, errors.New("checkpoint: nats kv: no JetStream context")
	}
	if bucket == "" {
		return nil, errors.New("checkpoint: nats kv: empty bucket name")
	}
	kv, err := js.KeyValue(ctx, bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:      bucket,
			Description: "restless-ingest stream checkpoints",
			History:     1,
			Storage:     jetstream.FileStorage,
		})
		if errors.Is(err, jetstream.ErrBucketExists) {
			// Another process created it meanwhile.
			kv, err = js.KeyValue(ctx, bucket)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("checkpoint: nats kv: bucket %q: %w", bucket, err)
	}
	return &NATSKV{kv: kv}, nil
}

// Load returns the cursor stored under the stream's key.
func (n *NATSKV) Load(ctx context.Context, stream string) (string, bool, error) {
	if err := ValidateStream(stream); err != nil {
		return "", false, err
	}
	if n.closed.Load() {
		return "", false, ErrClosed
	}
	e, err := n.kv.Get(ctx, stream)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("checkpoint: nats kv: stream %q: load: %w", stream, err)
	}
	v := e.Value()
	if len(v) == 0 || len(v) > maxCursorLen {
		return "", false, fmt.Errorf("checkpoint: nats kv: stream %q: %w: value of %d bytes", stream, ErrCorrupt, len(v))
	}
	return string(v), true, nil
}

// Save puts cursor under the stream's key; it returns once the server stored it.
func (n *NATSKV) Save(ctx context.Context, stream, cursor string) error {
	if err := ValidateStream(stream); err != nil {
		return err
	}
	if err := validateCursor(stream, cursor); err != nil {
		return err
	}
	if n.closed.Load() {
		return ErrClosed
	}
	if _, err := n.kv.PutString(ctx, stream, cursor); err != nil {
		return fmt.Errorf("checkpoint: nats kv: stream %q: save: %w", stream, err)
	}
	return nil
}

// Close marks the store closed; the NATS connection stays open (its owner
// closes it).
func (n *NATSKV) Close() error {
	n.closed.Store(true)
	return nil
}
