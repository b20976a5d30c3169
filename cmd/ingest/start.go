package main

import (
	"context"
	"errors"
	"net"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/restless-stream/ingest/checkpoint"
	"github.com/restless-stream/ingest/client"
)

// startBackoff paces the attempts to reach the broker at start.
var startBackoff = client.Backoff{Initial: time.Second, Max: 30 * time.Second}

// openBackends opens the sink, then the checkpoint store (which may live on
// the sink's broker), then reads every stream's checkpoint.
func (d *daemon) openBackends(ctx context.Context) error {
	s, connected, err := d.openSink(ctx)
	if err != nil {
		if d.cfg.Sink.Type == "nats" || d.cfg.Sink.Type == "kafka" {
			return &brokerError{err}
		}
		return err
	}
	if d.wrapSink != nil {
		s = d.wrapSink(s)
	}
	if d.cl != nil {
		s = fencedSink{sink: s, c: d.cl}
	}
	d.sink = s
	if d.store, err = d.openStore(ctx); err != nil {
		if d.cfg.Checkpoint.Type == "nats_kv" || d.cfg.Checkpoint.Type == "kafka" {
			return &brokerError{err}
		}
		return err
	}
	if err := d.announceStart(ctx); err != nil {
		return err
	}
	d.ready.SetSink(connected)
	d.metrics.SetSink(connected)
	return nil
}

// openBackendsRetrying opens the backends, and while the broker cannot be
// reached keeps trying with a jittered exponential backoff (1s to 30s), as the
// daemon does for an outage later on; /readyz answers 503 meanwhile. What
// waiting cannot fix ends the start at once: a mistake in the configuration,
// checkpoints another daemon holds, or ctx ending (a signal).
func (d *daemon) openBackendsRetrying(ctx context.Context) error {
	for attempt := 1; ; attempt++ {
		err := d.openBackends(ctx)
		if err == nil {
			if attempt > 1 {
				d.log.Info("broker reached; starting", "attempts", attempt)
			}
			return nil
		}
		d.closeBackends()
		d.sink, d.rawSink = nil, nil
		if !retryableStart(err) || ctx.Err() != nil {
			return err
		}
		delay := startBackoff.Delay(attempt)
		d.log.Warn("cannot start: broker or checkpoint store unreachable; retrying (readyz is 503 meanwhile)",
			"attempt", attempt, "delay", delay.Round(time.Millisecond), "err", err)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}

// brokerError is a failure to reach the broker (or the checkpoint store on it).
type brokerError struct{ err error }

func (e *brokerError) Error() string { return e.err.Error() }
func (e *brokerError) Unwrap() error { return e.err }

// retryableStart: a broker that cannot be reached (refused, reset, no route,
// a timeout, a name not resolved yet, a NATS server without JetStream ready)
// may come back. A mistake in the configuration, refused credentials, a bad
// local path or checkpoints that another daemon holds will not: they end the
// start at once.
func retryableStart(err error) bool {
	var be *brokerError
	var ce *ConfigError
	if !errors.As(err, &be) || errors.As(err, &ce) || errors.Is(err, checkpoint.ErrHeld) ||
		errors.Is(err, context.Canceled) || errors.Is(err, nats.ErrAuthorization) {
		return false
	}
	return unreachable(err)
}

// unreachable reports a failure to reach a server, as opposed to an answer.
func unreachable(err error) bool {
	for _, target := range []error{nats.ErrNoServers, nats.ErrTimeout, nats.ErrNoResponders, jetstream.ErrNoStreamResponse,
		syscall.ECONNREFUSED, syscall.ECONNRESET, syscall.EHOSTUNREACH, syscall.ENETUNREACH, context.DeadlineExceeded} {
		if errors.Is(err, target) {
			return true
		}
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return true // a broker's name may resolve only once its service is up
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
