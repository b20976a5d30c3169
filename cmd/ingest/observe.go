package main

import (
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/restless-stream/ingest/checkpoint"
	"github.com/restless-stream/ingest/pipeline"
)

// observer adapts Metrics to the pipeline's Observer and adds the log lines
// INGEST.md promises: every rejected event is logged once with its reason,
// and failed writes and checkpoint saves are logged too.
type observer struct {
	m     *Metrics
	log   *slog.Logger
	ready *Readiness   // nil: none
	deg   *Degradation // nil: not tracked
}

func (o observer) Stream(name string) pipeline.StreamObserver {
	return &loggedStream{
		StreamMetrics: o.m.Stream(name),
		log:           o.log.With("stream", name),
		name:          name,
		ready:         o.ready,
		limit:         logLimit{every: time.Second, burst: logBurst},
		deg:           o.deg,
	}
}

// logBurst is how many rejection lines a stream logs per second; beyond it
// lines are counted and the next logged line says how many were left out,
// so a flood of bad events cannot flood the log.
const logBurst = 20

// loggedStream is one stream's metrics plus its log lines.
type loggedStream struct {
	*StreamMetrics
	log   *slog.Logger
	limit logLimit
	name  string
	ready *Readiness // nil: none
	deg   *Degradation
}

// Published counts the records and ends a run of rejections.
func (s *loggedStream) Published(n int) {
	s.StreamMetrics.Published(n)
	if n > 0 {
		s.deg.Published(s.name)
	}
}

// Rejected counts the event and logs it (rate-limited).
func (s *loggedStream) Rejected(r pipeline.Rejection) {
	s.StreamMetrics.Rejected(r.Reason, r.DeadLettered)
	s.deg.Rejected(s.name)
	if ok, skipped := s.limit.allow(time.Now()); ok {
		attrs := []any{"reason", r.Reason, "error", r.Err, "dead_lettered", r.DeadLettered}
		if r.EventID != "" {
			attrs = append(attrs, "event_id", r.EventID)
		}
		if skipped > 0 {
			attrs = append(attrs, "not_logged_before", skipped)
		}
		s.log.Warn("event rejected", attrs...)
	}
}

// WriteFailed counts the records and logs the broker's error; the pipeline
// retries them with backoff, so this logs at most once per retry.
func (s *loggedStream) WriteFailed(n int, err error) {
	s.StreamMetrics.WriteFailed(n, err)
	s.log.Warn("write failed", "records", n, "err", err)
}

// CheckpointFailed counts the failure, turns the stream not ready and logs
// it; the save is retried.
func (s *loggedStream) CheckpointFailed(err error) {
	s.StreamMetrics.CheckpointFailed(err)
	if errors.Is(err, errNotOwner) || errors.Is(err, checkpoint.ErrFenced) || errors.Is(err, checkpoint.ErrNotClaimed) {
		// Cluster mode: the lease ended (a pause, a cut-off) and the lane
		// is being stopped; the fence refused the save, as it must.
		s.log.Warn("checkpoint not saved: this replica no longer owns the stream, which stops here", "err", redactText(err.Error()))
		return
	}
	if s.ready != nil {
		s.ready.CheckpointFailing(s.name, err)
	}
	s.log.Error("checkpoint save failed: the stream waits for its checkpoint store", "err", redactText(err.Error()))
}

// Checkpointed records the saved checkpoint; a stream whose saves failed is
// ready again.
func (s *loggedStream) Checkpointed(cursor string, eventReceived time.Time) {
	s.StreamMetrics.Checkpointed(cursor, eventReceived)
	if s.ready != nil {
		s.ready.CheckpointSaved(s.name)
	}
}

// logLimit allows burst lines per period and counts the rest.
type logLimit struct {
	mu      sync.Mutex
	every   time.Duration
	burst   int
	start   time.Time
	used    int
	skipped int
}

// allow reports whether a line may be logged now, and how many lines were
// left out since the last one that was.
func (l *logLimit) allow(now time.Time) (bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.start) >= l.every {
		l.start, l.used = now, 0
	}
	if l.used >= l.burst {
		l.skipped++
		return false, 0
	}
	l.used++
	skipped := l.skipped
	l.skipped = 0
	return true, skipped
}
