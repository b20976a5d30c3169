package main

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/restless-stream/ingest/checkpoint"
)

// Two daemons on one set of checkpoints would both read every stream and
// publish every event twice. A daemon therefore owns its checkpoints while it
// runs: the file store's directory by an flock (released by the kernel when
// the process ends, however it ends), a nats_kv store's streams by a lease in
// a bucket of its own. The second daemon stops at start with an error naming
// the first (exit 1).

// lockCheckpointDir locks checkpoint.dir; the lock is released after the store
// is closed.
func (d *daemon) lockCheckpointDir() error {
	l, err := checkpoint.LockDir(d.cfg.Checkpoint.Dir)
	if err != nil {
		return fmt.Errorf("checkpoint.dir: %w", err)
	}
	d.lock = l
	d.closers = append(d.closers, func() {
		if err := l.Unlock(); err != nil {
			d.log.Warn("releasing the checkpoint directory's lock", "err", err)
		}
	})
	d.log.Debug("checkpoint directory locked", "lock", l.Path())
	return nil
}

// leaseStreams takes the lease of every configured stream in the nats_kv
// store; it is refreshed until the daemon closes and released then.
func (d *daemon) leaseStreams(ctx context.Context, js jetstream.JetStream) error {
	names := make([]string, len(d.cfg.Streams))
	for i, s := range d.cfg.Streams {
		names[i] = s.Name
	}
	l, err := checkpoint.AcquireLease(ctx, js, d.cfg.Checkpoint.NATSKVBucket, names, checkpoint.DefaultLeaseTTL)
	if err != nil {
		return fmt.Errorf("checkpoint.nats_kv_bucket: %w", err)
	}
	d.lease = l
	d.closers = append(d.closers, l.Release)
	d.log.Debug("checkpoint lease taken", "bucket", checkpoint.LeaseBucket(d.cfg.Checkpoint.NATSKVBucket), "ttl", l.TTL())
	return nil
}

// leaseLost is closed when the nats_kv lease was lost; nil (never) without one.
func (d *daemon) leaseLost() <-chan struct{} {
	if d.lease == nil {
		return nil
	}
	return d.lease.Lost()
}
