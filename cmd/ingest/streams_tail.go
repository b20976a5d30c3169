package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"strings"

	"github.com/restless-stream/ingest/client"
)

// tailEvent is how `streams tail` prints an event: the envelope of
// PROTOCOL.md §3 in snake_case, on one line.
type tailEvent struct {
	Type      string          `json:"type"`
	Meta      tailMeta        `json:"meta"`
	Data      json.RawMessage `json:"data"`
	Error     json.RawMessage `json:"error"`
	Signature *string         `json:"signature"`
	EventID   *string         `json:"event_id"`
}

type tailMeta struct {
	Timestamp           string          `json:"timestamp,omitempty"`
	AttemptID           string          `json:"attempt_id,omitempty"`
	Status              int             `json:"status,omitempty"`
	LatencyMS           int64           `json:"latency_ms"`
	PayloadModeFallback json.RawMessage `json:"payload_mode_fallback"`
}

func orNull(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 {
		return json.RawMessage("null")
	}
	return raw
}

func orNil(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// cmdTail is `ingest streams tail`: the subscribe API on the command line.
// It prints each event as a JSON line on standard output, reports events it
// rejected on standard error and goes on, and stops at the end of the
// stream (exit 0), on a signal (exit 0) or on a failure (exit 1).
func cmdTail(ctx context.Context, e *env, f *streamFlags, c *client.Client, pos []string) error {
	targets := 0
	for _, set := range []bool{len(pos) > 0, f.url != "", f.directURL != ""} {
		if set {
			targets++
		}
	}
	if targets != 1 || len(pos) > 1 {
		return usagef("streams tail: give exactly one of a stream ID, --url URL or --direct-url URL")
	}
	ws := false
	switch strings.ToLower(f.transport) {
	case "", "sse":
	case "websocket", "ws":
		ws = true
	default:
		return usagef("streams tail: --transport %q is not sse or websocket", f.transport)
	}
	opts := []client.SubscribeOption{client.WithCursor(f.cursor), client.WithSince(f.since), client.WithReconnect(!f.noReconnect)}
	if len(f.verifySecrets) > 0 {
		v, err := client.NewVerifier(f.verifySecrets)
		if err != nil {
			return usagef("--verify-secret: %v", err)
		}
		opts = append(opts, client.WithVerifier(v))
	}
	if f.dkey != "" {
		if f.directURL == "" {
			return usagef("streams tail: --dedupe-key needs --direct-url")
		}
		opts = append(opts, client.WithDirectSession(f.dkey))
	}

	var events iter.Seq2[*client.Event, error]
	switch {
	case f.directURL != "":
		f.url = f.directURL // the upstream fields are read as direct-setup reads them
		in, err := f.directInput()
		if err != nil {
			return err
		}
		if ws {
			events = c.Streams.SubscribeDirectWebSocket(ctx, in, opts...)
		} else {
			events = c.Streams.SubscribeDirectSSE(ctx, in, opts...)
		}
	default:
		u := f.url
		if u == "" {
			build := client.BuildSSEURL
			if ws {
				build = client.BuildWebSocketURL
			}
			var err error
			if u, err = build(c.StreamBaseURL(), client.RuntimeTarget{StreamID: pos[0]}); err != nil {
				return usagef("streams tail: %v", err)
			}
		}
		if ws {
			events = c.Streams.SubscribeWebSocket(ctx, u, opts...)
		} else {
			events = c.Streams.SubscribeSSE(ctx, u, opts...)
		}
	}
	if f.materialize {
		return printDocuments(ctx, e.stdout, e.stderr, events)
	}
	return printEvents(ctx, e.stdout, e.stderr, events)
}

// rejectedEvent reports whether err is an event the subscription rejected
// (and went on), writing it to errOut; false for an error that ends it.
func rejectedEvent(errOut io.Writer, err error) bool {
	var pe *client.ParseError
	var se *client.SignatureError
	if errors.As(err, &pe) || errors.As(err, &se) || errors.Is(err, client.ErrEventTooLarge) {
		fmt.Fprintf(errOut, "ingest: streams tail: event rejected: %s\n", redactText(err.Error()))
		return true
	}
	return false
}

// printDocuments is `streams tail --materialize`: each event is applied to
// the stream's document (client.Document), and the whole document is
// written as a JSON line each time an event sets it. A patch that fails, or
// an event rejected (it may have been a patch), is reported on errOut and
// leaves the document unset until the next full document: nothing is
// printed until then, never a wrong document.
func printDocuments(ctx context.Context, out, errOut io.Writer, events iter.Seq2[*client.Event, error]) error {
	doc := client.NewDocument()
	for ev, err := range events {
		if err != nil {
			if rejectedEvent(errOut, err) {
				doc.Reset()
				continue
			}
			if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
				return nil
			}
			return fmt.Errorf("streams tail: %w", err)
		}
		changed, err := doc.Apply(ev)
		if err != nil {
			fmt.Fprintf(errOut, "ingest: streams tail: no document until the next full one: %s\n", redactText(err.Error()))
			continue
		}
		if !changed {
			continue
		}
		if _, err := out.Write(append(append([]byte(nil), doc.Bytes()...), '\n')); err != nil {
			return err
		}
	}
	return nil
}

// printEvents writes each event as a JSON line and each rejected event as a
// line on errOut; it returns the error that ended the events, if any.
func printEvents(ctx context.Context, out, errOut io.Writer, events iter.Seq2[*client.Event, error]) error {
	for ev, err := range events {
		if err != nil {
			if rejectedEvent(errOut, err) {
				continue
			}
			if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
				return nil // stopped by a signal
			}
			return fmt.Errorf("streams tail: %w", err)
		}
		line, err := json.Marshal(tailEvent{
			Type: ev.Type,
			Meta: tailMeta{Timestamp: ev.Meta.Timestamp, AttemptID: ev.Meta.AttemptID, Status: ev.Meta.Status,
				LatencyMS: ev.Meta.LatencyMS, PayloadModeFallback: orNull(ev.Meta.PayloadModeFallback)},
			Data: orNull(ev.Data), Error: orNull(ev.Error), Signature: orNil(ev.Signature), EventID: orNil(ev.EventID),
		})
		if err != nil {
			return fmt.Errorf("streams tail: event %s: %w", ev.EventID, err)
		}
		if _, err := out.Write(append(line, '\n')); err != nil {
			return err
		}
	}
	return nil
}
