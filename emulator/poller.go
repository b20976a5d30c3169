package emulator

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/itchyny/gojq"

	"github.com/restless-stream/ingest/client"
)

// poller is the goroutine polling one stream's upstream.
type poller struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// stop ends the poller and waits for it.
func (p *poller) stop() {
	if p == nil {
		return
	}
	p.cancel()
	<-p.done
}

// startPollerLocked starts polling st with a copy of its configuration. The
// poller never takes Emulator.mu, so it may be stopped while that is held.
func (e *Emulator) startPollerLocked(st *stream) {
	if st.poller != nil || st.feed == nil || e.closed {
		return
	}
	ctx, cancel := context.WithCancel(e.ctx)
	p := &poller{cancel: cancel, done: make(chan struct{})}
	st.poller = p
	cfg := st.cfg.clone()
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		defer close(p.done)
		e.poll(ctx, st, cfg)
	}()
}

// stopPollerLocked stops st's poller, if any, and waits for it.
func (e *Emulator) stopPollerLocked(st *stream) {
	p := st.poller
	st.poller = nil
	p.stop()
}

// poll fetches cfg's upstream every interval and publishes what changed: an
// update when the body differs from the last one, an error event when the
// upstream fails (once per distinct failure: a run of identical failures
// gives one event, and a success ends the run).
func (e *Emulator) poll(ctx context.Context, st *stream, cfg streamConfig) {
	jq, _ := compileJQ(cfg.JQFilter) // validated when the stream was saved
	patchMode := cfg.PayloadMode == client.PayloadJSONPatch
	lastFailure := ""
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		start := time.Now()
		status, body, err := e.fetch(ctx, st, cfg)
		if ctx.Err() != nil {
			return
		}
		m := eventMeta{Time: start, AttemptID: newAttemptID(), Status: status, LatencyMS: time.Since(start).Milliseconds()}
		var fail *errorBody
		switch {
		case err != nil:
			fail = &errorBody{Message: "upstream request failed: " + err.Error(), Code: "UPSTREAM_UNREACHABLE"}
		case status < 200 || status > 299:
			fail = &errorBody{Message: fmt.Sprintf("upstream answered %d %s", status, http.StatusText(status)), Status: status, Code: "UPSTREAM_STATUS"}
		default:
			doc, err := e.document(body)
			if err != nil {
				fail = &errorBody{Message: err.Error(), Status: status, Code: "UPSTREAM_INVALID_JSON"}
				break
			}
			if jq != nil {
				var ok bool
				doc, ok, err = e.filter(ctx, jq, doc)
				if ctx.Err() != nil {
					return
				}
				if err != nil {
					fail = &errorBody{Message: err.Error(), Status: status, Code: "JQ_FILTER_FAILED"}
					break
				}
				if !ok { // the filter gave nothing: nothing to publish
					lastFailure = ""
					st.usage.add(start, 1, 0)
					break
				}
			}
			lastFailure = ""
			published, err := st.feed.publishUpdate(m, doc, st.secret, patchMode, false)
			if err != nil {
				fail = &errorBody{Message: err.Error(), Status: status, Code: "PATCH_FAILED"}
				break
			}
			if published {
				st.usage.add(start, 1, 1)
			} else {
				st.usage.add(start, 1, 0)
			}
		}
		if fail != nil {
			st.usage.add(start, 1, 0)
			key := fail.Code + "\x00" + fail.Message
			if key != lastFailure {
				lastFailure = key
				st.feed.publishError(m, fail.json())
				st.usage.add(start, 0, 1)
			}
		}
		timer.Reset(cfg.interval(time.Now()))
	}
}

// document turns an upstream body into its canonical document.
func (e *Emulator) document(body []byte) ([]byte, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, errors.New("upstream body is empty, not JSON")
	}
	doc, err := canonical(body)
	if err != nil {
		return nil, fmt.Errorf("upstream body is not JSON: %v", err)
	}
	return doc, nil
}

// filter runs a stream's jq program on its document and returns the
// canonical result; ok is false when the program gave no result. A run is
// bounded by jqTimeout, its result by Options.MaxUpstreamBytes.
func (e *Emulator) filter(ctx context.Context, jq *gojq.Code, doc []byte) (out []byte, ok bool, err error) {
	out, ok, err = runJQ(ctx, jq, doc, jqTimeout, e.opts.MaxUpstreamBytes)
	if err != nil || !ok {
		return nil, ok, err
	}
	if out, err = canonical(out); err != nil {
		return nil, false, fmt.Errorf("jq result: %w", err)
	}
	return out, true, nil
}

// fetch performs one poll. The demo stream is served in-process.
func (e *Emulator) fetch(ctx context.Context, st *stream, cfg streamConfig) (int, []byte, error) {
	if st.kind == kindDemo {
		return http.StatusOK, demoDocument(time.Now()), nil
	}
	var body io.Reader
	if len(cfg.Body) > 0 {
		body = bytes.NewReader(cfg.Body)
	}
	req, err := http.NewRequestWithContext(ctx, string(cfg.Method), cfg.URL, body)
	if err != nil {
		return 0, nil, err
	}
	if e.isOwnURL(req.URL) && req.URL.Path == DemoPath {
		// The emulator's own demo upstream: served in-process, as the
		// emulator never fetches its own address.
		return http.StatusOK, demoDocument(time.Now()), nil
	}
	if err := e.upstreamAllowed(req.URL); err != nil {
		return 0, nil, err
	}
	for k, v := range cfg.Headers {
		req.Header.Set(k, v)
	}
	if body != nil && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if req.Header.Get("Accept") == "" {
		req.Header.Set("Accept", "application/json")
	}
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", "restless-emulator")
	}
	resp, err := e.client.Do(req)
	if err != nil {
		// The URL may carry credentials: report only the cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, e.opts.MaxUpstreamBytes+1))
	if err != nil {
		return resp.StatusCode, nil, fmt.Errorf("reading the upstream body: %w", err)
	}
	if int64(len(b)) > e.opts.MaxUpstreamBytes {
		return resp.StatusCode, nil, fmt.Errorf("upstream body larger than %d bytes", e.opts.MaxUpstreamBytes)
	}
	return resp.StatusCode, b, nil
}
