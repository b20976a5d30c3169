package main

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/restless-stream/ingest"
	"github.com/restless-stream/ingest/pipeline"
)

// streamCursor is the resume position a stream's source holds: the cursor it
// was opened at, then the cursor of the last frame it read. Reconnects resume
// from it; the log names it.
type streamCursor struct {
	mu  sync.Mutex
	cur string
}

func (c *streamCursor) set(s string) {
	c.mu.Lock()
	c.cur = s
	c.mu.Unlock()
}

func (c *streamCursor) get() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cur
}

// cursorSource records the cursor of every frame its source returns.
type cursorSource struct {
	pipeline.Source
	cur *streamCursor
}

func (s cursorSource) Next(ctx context.Context) (ingest.Frame, error) {
	f, err := s.Source.Next(ctx)
	if err == nil && f.Cursor != "" {
		s.cur.set(f.Cursor)
	}
	return f, err
}

// progressReporter logs, every interval, one line per stream at info: what it
// published, dropped as duplicates and rejected since the start and since the
// last line, the lag of its last event, and its cursors.
type progressReporter struct {
	log     *slog.Logger
	metrics *Metrics
	status  func() []pipeline.StreamStatus
	cursor  func(stream string) string
	every   time.Duration

	last map[string]progressCounts
}

type progressCounts struct{ published, duplicates, rejected int64 }

func (p *progressReporter) run(ctx context.Context) {
	if p.every <= 0 {
		return
	}
	t := time.NewTicker(p.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			p.report()
		}
	}
}

func (p *progressReporter) report() {
	if p.last == nil {
		p.last = map[string]progressCounts{}
	}
	for _, st := range p.status() {
		m := p.metrics.Stream(st.Name)
		now := progressCounts{m.nPublished.Load(), m.nDuplicate.Load(), m.nRejected.Load()}
		prev := p.last[st.Name]
		p.last[st.Name] = now
		attrs := []any{"stream", st.Name, "state", st.State.String(),
			"published", now.published, "published_since_last", now.published - prev.published,
			"duplicates", now.duplicates, "rejected", now.rejected, "rejected_since_last", now.rejected - prev.rejected}
		if lag := m.lastLag.Load(); lag != 0 {
			attrs = append(attrs, "lag", time.Duration(lag).Round(time.Millisecond))
		}
		if c := p.cursor(st.Name); c != "" {
			attrs = append(attrs, "cursor", c)
		}
		if st.Checkpoint != "" {
			attrs = append(attrs, "checkpoint", st.Checkpoint)
		}
		p.log.Info("progress", attrs...)
	}
}

// trackCursor wraps src to record its cursor, starting at the one it was
// opened at.
func (d *daemon) trackCursor(stream, opened string, src pipeline.Source) pipeline.Source {
	sc := d.cursors[stream]
	if sc == nil {
		return src
	}
	sc.set(opened)
	return cursorSource{Source: src, cur: sc}
}
