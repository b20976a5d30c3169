package main

import (
	"sort"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Readiness means "this process does the work it is configured for": the sink
// is connected, and every stream is connected (or reconnecting briefly after
// having connected, or ended by its server) and not degraded. A stream is
// degraded when
//
//   - it rejected the last rejectAllAfter events in a row and published none
//     since (a wrong HMAC secret rejects everything), until it publishes one;
//   - its source failed reconnectDegradedAfter attempts in a row, until it
//     connects again (reconnect.max_attempts 0 retries forever; readiness
//     still says so).
//
// /readyz is then 503 and names the reason; ingest_stream_degraded{stream} is 1.
const (
	rejectAllAfter         = 5
	reconnectDegradedAfter = 5
)

// Degradation tracks, per stream, the signals above.
type Degradation struct {
	mu      sync.Mutex
	streams map[string]*degradedState
}

type degradedState struct {
	rejectedInARow int
	attempts       int
}

// NewDegradation tracks the named streams.
func NewDegradation(names []string) *Degradation {
	d := &Degradation{streams: map[string]*degradedState{}}
	for _, n := range names {
		d.streams[n] = &degradedState{}
	}
	return d
}

func (d *Degradation) with(stream string, f func(*degradedState)) {
	if d == nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if s, ok := d.streams[stream]; ok {
		f(s)
	}
}

// Rejected counts a rejected event.
func (d *Degradation) Rejected(stream string) {
	d.with(stream, func(s *degradedState) { s.rejectedInARow++ })
}

// Published resets the rejection run.
func (d *Degradation) Published(stream string) {
	d.with(stream, func(s *degradedState) { s.rejectedInARow = 0 })
}

// Attempt records the source's consecutive failed attempts (0 once connected).
func (d *Degradation) Attempt(stream string, n int) {
	d.with(stream, func(s *degradedState) { s.attempts = n })
}

// Reason says why stream is degraded, or "".
func (d *Degradation) Reason(stream string) string {
	if d == nil {
		return ""
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	s, ok := d.streams[stream]
	switch {
	case !ok:
		return ""
	case s.rejectedInARow >= rejectAllAfter:
		return "rejecting every event (a wrong verify secret?)"
	case s.attempts >= reconnectDegradedAfter:
		return "cannot reconnect"
	}
	return ""
}

// Describe and Collect make ingest_stream_degraded{stream}.
func (d *Degradation) Describe(ch chan<- *prometheus.Desc) { ch <- degradedDesc }

func (d *Degradation) Collect(ch chan<- prometheus.Metric) {
	d.mu.Lock()
	names := make([]string, 0, len(d.streams))
	for n := range d.streams {
		names = append(names, n)
	}
	d.mu.Unlock()
	sort.Strings(names)
	for _, n := range names {
		ch <- prometheus.MustNewConstMetric(degradedDesc, prometheus.GaugeValue, b2f(d.Reason(n) != ""), n)
	}
}

var degradedDesc = prometheus.NewDesc(metricsNamespace+"_stream_degraded",
	"1 while the stream rejects every event or cannot reconnect (readyz is then 503).", []string{"stream"}, nil)
