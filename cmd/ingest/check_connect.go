package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/restless-stream/ingest"
	"github.com/restless-stream/ingest/client"
	"github.com/restless-stream/ingest/pipeline"
)

// connectTimeout bounds each probe of check --connect.
const connectTimeout = 15 * time.Second

// checkConnect is `ingest check --connect`: it tries the REST API with the key,
// each stream (one handshake, no event consumed into any checkpoint) and the
// broker, prints one line per probe and fails (exit 1) when any failed.
func checkConnect(ctx context.Context, w io.Writer, cfg *Config) error {
	failed := 0
	report := func(what string, err error) {
		if err != nil {
			failed++
			fmt.Fprintf(w, "FAIL  %s: %s\n", what, redactText(err.Error()))
			return
		}
		fmt.Fprintf(w, "ok    %s\n", what)
	}
	states := make(chan struct {
		stream string
		c      ingest.StateChange
	}, 64)
	d := &daemon{cfg: cfg, log: slog.New(slog.NewTextHandler(io.Discard, nil)), metrics: NewMetrics(),
		cursors: map[string]*streamCursor{}}
	d.onState = func(stream string, c ingest.StateChange) {
		select {
		case states <- struct {
			stream string
			c      ingest.StateChange
		}{stream, c}:
		default:
		}
	}
	names := make([]string, len(cfg.Streams))
	for i, s := range cfg.Streams {
		names[i] = s.Name
		d.cursors[s.Name] = &streamCursor{}
	}
	d.ready = NewReadiness(names)
	defer d.closeBackends()

	api, err := client.New(cfg.Restless.APIKey.Reveal(), client.WithBaseURL(cfg.Restless.BaseURL),
		client.WithStreamBaseURL(cfg.Restless.StreamBaseURL), client.WithTimeout(connectTimeout),
		client.WithUserAgent("restless-ingest/"+version))
	if err != nil {
		return &ConfigError{Errs: []FieldError{{Path: "restless", Msg: err.Error()}}}
	}
	d.api = api

	// The REST API, with the key.
	if cfg.Restless.APIKey == "" {
		report("restless API "+cfg.Restless.BaseURL, fmt.Errorf("no API key to try (restless.api_key or RESTLESS_API_KEY)"))
	} else {
		cctx, cancel := context.WithTimeout(ctx, connectTimeout)
		r, err := api.Streams.ValidateAPIKey(cctx, "")
		cancel()
		if err == nil && !r.Affected {
			err = fmt.Errorf("the service does not accept the key (affected: false)")
		}
		report("restless API "+cfg.Restless.BaseURL+" accepts the key", err)
	}

	// Each stream: one handshake.
	for i, s := range cfg.Streams {
		open, err := d.sourceFactory(s, fmt.Sprintf("streams[%d]", i))
		if err != nil {
			report("stream "+s.Name, err)
			continue
		}
		report("stream "+s.Name+" connects", probeStream(ctx, open, s.Name, states))
	}

	// The broker.
	switch cfg.Sink.Type {
	case "nats", "kafka":
		cctx, cancel := context.WithTimeout(ctx, connectTimeout)
		_, _, err := d.openSink(cctx)
		cancel()
		report("sink "+cfg.Sink.Type+" reachable", err)
	}
	if failed > 0 {
		return fmt.Errorf("check --connect: %d of the probes failed", failed)
	}
	return nil
}

// probeStream opens a source and waits for its first state: connected, or the
// error of its first failed attempt.
func probeStream(ctx context.Context, open func(context.Context, string) (pipeline.Source, error), name string,
	states <-chan struct {
		stream string
		c      ingest.StateChange
	}) error {
	cctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	src, err := open(cctx, "")
	if err != nil {
		return err
	}
	defer src.Close()
	go func() { _, _ = src.Next(cctx) }() // sources connect when read
	for {
		select {
		case <-cctx.Done():
			return fmt.Errorf("no connection within %s", connectTimeout)
		case st := <-states:
			if st.stream != name {
				continue
			}
			switch st.c.State {
			case ingest.StateConnected, ingest.StateEnded:
				return nil
			case ingest.StateReconnecting, ingest.StateFailed:
				if st.c.Err != nil {
					return st.c.Err
				}
				return fmt.Errorf("%s", st.c.State)
			}
		}
	}
}
