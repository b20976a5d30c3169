package main

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/restless-stream/ingest"
	"github.com/restless-stream/ingest/pipeline"
)

// metricsNamespace prefixes every metric (INGEST.md, Observability).
const metricsNamespace = "ingest"

// Metrics are the daemon's Prometheus metrics, on a registry of their own.
type Metrics struct {
	Registry *prometheus.Registry

	received      *prometheus.CounterVec
	published     *prometheus.CounterVec
	duplicate     *prometheus.CounterVec
	noEventID     *prometheus.CounterVec
	rejected      *prometheus.CounterVec
	deadLettered  *prometheus.CounterVec
	writeFailed   *prometheus.CounterVec
	checkpointErr *prometheus.CounterVec
	connected     *prometheus.GaugeVec
	ckFailing     *prometheus.GaugeVec
	reconnects    *prometheus.CounterVec
	publish       *prometheus.HistogramVec
	lag           *prometheus.HistogramVec
	sinkUp        atomic.Pointer[func() bool] // read at every scrape

	mu      sync.Mutex
	streams map[string]*StreamMetrics
}

// NewMetrics registers every metric, plus the Go and process collectors.
func NewMetrics() *Metrics {
	reg := prometheus.NewRegistry()
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: metricsNamespace, Name: name, Help: help}, labels)
		reg.MustRegister(c)
		return c
	}
	m := &Metrics{
		Registry:      reg,
		streams:       map[string]*StreamMetrics{},
		received:      counter("events_received_total", "Events read from the stream's source.", "stream"),
		published:     counter("events_published_total", "Records acknowledged by the broker (dead-letter records excluded).", "stream"),
		duplicate:     counter("events_duplicate_total", "Events dropped because their event_id was already published.", "stream"),
		noEventID:     counter("events_without_id_total", "Events without an event_id, published without deduplication.", "stream"),
		rejected:      counter("events_rejected_total", "Events rejected, by reason (parse_error, too_large, signature_missing, signature_invalid, publish_rejected).", "stream", "reason"),
		deadLettered:  counter("events_dead_lettered_total", "Rejected events sent to pipeline.dead_letter.", "stream"),
		writeFailed:   counter("sink_write_failures_total", "Records whose write failed and is retried.", "stream"),
		checkpointErr: counter("checkpoint_failures_total", "Checkpoint saves that failed and are retried.", "stream"),
		reconnects:    counter("source_reconnects_total", "Reconnect attempts of the stream's source.", "stream"),
	}
	m.connected = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: metricsNamespace, Name: "source_connected", Help: "1 while the stream's source is connected, else 0."}, []string{"stream"})
	m.ckFailing = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: metricsNamespace, Name: "checkpoint_failing", Help: "1 while the stream's last checkpoint save failed (it is retried, and /readyz is 503), else 0."}, []string{"stream"})
	m.publish = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: metricsNamespace, Name: "sink_publish_seconds",
		Help:    "Duration of one sink write, from call to broker acknowledgement.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"stream"})
	m.lag = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: metricsNamespace, Name: "event_lag_seconds",
		Help:    "now − meta.timestamp of each accepted event.",
		Buckets: []float64{.01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600},
	}, []string{"stream"})
	sinkConnected := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: metricsNamespace, Name: "sink_connected", Help: "1 while the sink is connected to its broker, else 0."},
		func() float64 {
			if f := m.sinkUp.Load(); f != nil {
				return b2f((*f)())
			}
			return 0
		})
	reg.MustRegister(m.connected, m.ckFailing, m.publish, m.lag, sinkConnected, &cursorAgeCollector{m: m})
	ver, rev := buildInfo()
	bi := prometheus.NewGauge(prometheus.GaugeOpts{Namespace: metricsNamespace, Name: "build_info", Help: "Always 1; labels name the build.", ConstLabels: prometheus.Labels{"version": ver, "commit": rev}})
	bi.Set(1)
	reg.MustRegister(bi, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Stream returns the metrics of one stream, creating its series at zero so that
// dashboards see every stream from the start.
func (m *Metrics) Stream(name string) *StreamMetrics {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s, ok := m.streams[name]; ok {
		return s
	}
	s := &StreamMetrics{
		m:            m,
		name:         name,
		received:     m.received.WithLabelValues(name),
		published:    m.published.WithLabelValues(name),
		duplicate:    m.duplicate.WithLabelValues(name),
		noEventID:    m.noEventID.WithLabelValues(name),
		deadLettered: m.deadLettered.WithLabelValues(name),
		writeFailed:  m.writeFailed.WithLabelValues(name),
		checkpoint:   m.checkpointErr.WithLabelValues(name),
		connected:    m.connected.WithLabelValues(name),
		ckFailing:    m.ckFailing.WithLabelValues(name),
		reconnects:   m.reconnects.WithLabelValues(name),
		publish:      m.publish.WithLabelValues(name),
		lag:          m.lag.WithLabelValues(name),
		rejected:     map[string]prometheus.Counter{},
	}
	for _, r := range []string{pipeline.ReasonParseError, pipeline.ReasonTooLarge, pipeline.ReasonSignatureMissing, pipeline.ReasonSignatureInvalid, pipeline.ReasonPublishRejected, pipeline.ReasonPatchFailed} {
		s.rejected[r] = m.rejected.WithLabelValues(name, r)
	}
	m.streams[name] = s
	return s
}

// SetSink makes ingest_sink_connected report connected() at every scrape; nil
// means a sink that is always connected (file, stdout).
func (m *Metrics) SetSink(connected func() bool) {
	if connected == nil {
		connected = func() bool { return true }
	}
	m.sinkUp.Store(&connected)
}

// StreamMetrics are one stream's series; its methods are the pipeline's
// StreamObserver and are safe for concurrent use.
type StreamMetrics struct {
	m    *Metrics
	name string

	received, published, duplicate, noEventID, deadLettered, writeFailed, checkpoint prometheus.Counter
	reconnects                                                                       prometheus.Counter
	connected, ckFailing                                                             prometheus.Gauge
	publish, lag                                                                     prometheus.Observer
	rejected                                                                         map[string]prometheus.Counter // fixed after creation

	// Totals for the demo's progress line, without scraping the registry.
	nReceived, nPublished, nDuplicate, nRejected atomic.Int64
	// checkpointed is the receive time (UnixNano) of the event the checkpoint stands for.
	checkpointed atomic.Int64
	// live is what the status endpoints read beyond the counters.
	live streamLive
	// lastLag is the lag (nanoseconds) of the last event, for the progress line.
	lastLag atomic.Int64
}

// Received counts a frame read from the source.
func (s *StreamMetrics) Received() { s.received.Inc(); s.nReceived.Add(1) }

// Published counts records acknowledged by the sink.
func (s *StreamMetrics) Published(n int) {
	s.published.Add(float64(n))
	s.nPublished.Add(int64(n))
	s.live.recovered(errFromWrite)
}

// Duplicate counts a dropped duplicate.
func (s *StreamMetrics) Duplicate() { s.duplicate.Inc(); s.nDuplicate.Add(1) }

// NoEventID counts an event without event_id.
func (s *StreamMetrics) NoEventID() { s.noEventID.Inc() }

// Rejected counts a rejected event by reason.
func (s *StreamMetrics) Rejected(reason string, deadLettered bool) {
	c, ok := s.rejected[reason]
	if !ok {
		c = s.m.rejected.WithLabelValues(s.name, reason)
	}
	c.Inc()
	s.nRejected.Add(1)
	if deadLettered {
		s.deadLettered.Inc()
	}
}

// PublishLatency observes one acknowledged write.
func (s *StreamMetrics) PublishLatency(d time.Duration) { s.publish.Observe(d.Seconds()) }

// WriteFailed counts records whose write failed.
func (s *StreamMetrics) WriteFailed(n int, err error) {
	s.writeFailed.Add(float64(n))
	s.live.fail(errFromWrite, err)
}

// EventLag observes now − meta.timestamp.
func (s *StreamMetrics) EventLag(d time.Duration) {
	s.lag.Observe(d.Seconds())
	s.live.lag.Store(int64(d))
	s.lastLag.Store(int64(d))
}

// Checkpointed remembers when the checkpointed event was received, and
// clears ingest_checkpoint_failing.
func (s *StreamMetrics) Checkpointed(_ string, eventReceived time.Time) {
	s.checkpointed.Store(eventReceived.UnixNano())
	s.ckFailing.Set(0)
	s.live.recovered(errFromCheckpoint)
}

// CheckpointFailed counts a failed save, sets ingest_checkpoint_failing
// until a save succeeds, and shows the error in /v1/streams.
func (s *StreamMetrics) CheckpointFailed(err error) {
	s.checkpoint.Inc()
	s.ckFailing.Set(1)
	s.live.fail(errFromCheckpoint, err)
}

// State records a source state change: connected gauge and reconnect counter.
func (s *StreamMetrics) State(c ingest.StateChange) {
	s.connected.Set(b2f(c.State == ingest.StateConnected))
	if c.State == ingest.StateReconnecting {
		s.reconnects.Inc()
	}
	s.live.state(c)
}

// cursorAgeCollector computes ingest_checkpoint_cursor_age_seconds at scrape time:
// how long ago the event the checkpoint stands for was received. It grows while a
// stream's checkpoint does not move.
type cursorAgeCollector struct{ m *Metrics }

var cursorAgeDesc = prometheus.NewDesc(metricsNamespace+"_checkpoint_cursor_age_seconds",
	"Seconds since the event the stream's checkpoint stands for was received.", []string{"stream"}, nil)

func (c *cursorAgeCollector) Describe(ch chan<- *prometheus.Desc) { ch <- cursorAgeDesc }

func (c *cursorAgeCollector) Collect(ch chan<- prometheus.Metric) {
	c.m.mu.Lock()
	streams := make([]*StreamMetrics, 0, len(c.m.streams))
	for _, s := range c.m.streams {
		streams = append(streams, s)
	}
	c.m.mu.Unlock()
	now := time.Now()
	for _, s := range streams {
		if t := s.checkpointed.Load(); t != 0 {
			ch <- prometheus.MustNewConstMetric(cursorAgeDesc, prometheus.GaugeValue, now.Sub(time.Unix(0, t)).Seconds(), s.name)
		}
	}
}

// Totals sums the progress counters over every stream.
func (m *Metrics) Totals() (received, published, duplicate, rejected int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, s := range m.streams {
		received += s.nReceived.Load()
		published += s.nPublished.Load()
		duplicate += s.nDuplicate.Load()
		rejected += s.nRejected.Load()
	}
	return
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
