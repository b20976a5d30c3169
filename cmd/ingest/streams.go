package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/restless-stream/ingest"
	"github.com/restless-stream/ingest/client"
)

const streamsUsage = `Usage: ingest streams <operation> [flags]

Operations (JSON on standard output):
  list [--limit 20] [--offset 0] [--all]     list streams
  get ID                                     one stream
  create --name N --url U [fields]           create a stream (the answer holds its hmacSecret: keep it)
  update ID [fields]                         change the fields given
  start ID | stop ID | delete ID             start, stop or delete a stream
  usage ID                                   credit usage statistics
  validate-key [KEY]                         check an API key (default: the configured one)
  snippets ID [--language L]                 runtime URLs and code snippets
  direct-setup --url U [fields] [--language L]      commands, URLs and snippets of a direct stream
  direct-session --url U --dedupe-key K [fields]    open or reuse a direct session
  tail (ID | --url URL | --direct-url U [fields])   print a stream's events as JSON lines until it ends
      [--transport sse|websocket] [--since S] [--cursor C] [--verify-secret S]… [--no-reconnect] [--materialize]
      [--dedupe-key K]   (--url is a runtime URL here; --direct-url the upstream of a direct stream)

Fields: --description --status ACTIVE|INACTIVE --method GET|POST|… --header K=V (repeatable)
        --body JSON --payload-mode FULL_DATA|JSON_PATCH --polling-interval SECONDS
        --jq-filter F --polling-strategies JSON

Connection: --api-key (or RESTLESS_API_KEY), --base-url, --stream-base-url, --timeout;
-c FILE reads only the file's restless section (INGEST_RESTLESS__* apply too).
`

// streamFlags are every flag of the streams operations.
type streamFlags struct {
	fs                         *flag.FlagSet
	file, apiKey, baseURL      string
	streamBaseURL              string
	timeout                    time.Duration
	limit, offset              int
	all                        bool
	name, description, status  string
	method, url, body          string
	payloadMode, jqFilter      string
	strategies, language, dkey string
	pollingInterval            float64
	headers                    setFlags

	// tail
	directURL, transport, since, cursor string
	verifySecrets                       setFlags
	noReconnect                         bool
	materialize                         bool
}

func (f *streamFlags) register(fs *flag.FlagSet) {
	f.fs = fs
	fs.StringVar(&f.file, "c", "", "configuration `FILE` (only its restless section is read)")
	fs.StringVar(&f.file, "config", "", "configuration `FILE` (same as -c)")
	fs.StringVar(&f.apiKey, "api-key", "", "API `key` (default restless.api_key, RESTLESS_API_KEY)")
	fs.StringVar(&f.baseURL, "base-url", "", "REST API base `URL` (default restless.base_url)")
	fs.StringVar(&f.streamBaseURL, "stream-base-url", "", "runtime base `URL` (default restless.stream_base_url)")
	fs.DurationVar(&f.timeout, "timeout", client.DefaultTimeout, "timeout of each request")
	fs.IntVar(&f.limit, "limit", client.DefaultListLimit, "list: page size")
	fs.IntVar(&f.offset, "offset", 0, "list: offset")
	fs.BoolVar(&f.all, "all", false, "list: every page")
	fs.StringVar(&f.name, "name", "", "stream name")
	fs.StringVar(&f.description, "description", "", "stream description")
	fs.StringVar(&f.status, "status", "", "ACTIVE or INACTIVE")
	fs.StringVar(&f.method, "method", "", "HTTP method of the upstream request")
	fs.StringVar(&f.url, "url", "", "upstream URL (tail: a runtime URL)")
	fs.Var(&f.headers, "header", "upstream header `K=V` (repeatable)")
	fs.StringVar(&f.body, "body", "", "upstream request body (`JSON`)")
	fs.StringVar(&f.payloadMode, "payload-mode", "", "FULL_DATA or JSON_PATCH")
	fs.Float64Var(&f.pollingInterval, "polling-interval", 0, "polling interval in `seconds`")
	fs.StringVar(&f.jqFilter, "jq-filter", "", "jq filter applied to the upstream body")
	fs.StringVar(&f.strategies, "polling-strategies", "", "polling strategies (`JSON` array)")
	fs.StringVar(&f.language, "language", "", "snippets language (e.g. go, python, curl)")
	fs.StringVar(&f.dkey, "dedupe-key", "", "direct-session: key that makes the session reusable")
	fs.StringVar(&f.directURL, "direct-url", "", "tail: upstream `URL` of a direct stream")
	fs.StringVar(&f.transport, "transport", "sse", "tail: sse or websocket")
	fs.StringVar(&f.since, "since", "", "tail: start at this ISO-8601 time or cursor")
	fs.StringVar(&f.cursor, "cursor", "", "tail: resume after this cursor (an event_id)")
	fs.Var(&f.verifySecrets, "verify-secret", "tail: HMAC `secret` to verify events with (repeatable)")
	fs.BoolVar(&f.noReconnect, "no-reconnect", false, "tail: stop when the connection ends instead of reconnecting")
	fs.BoolVar(&f.materialize, "materialize", false, "tail: print the stream's whole document (JSON_PATCH patches applied) instead of its events")
}

// parseInterleaved parses flags that may follow positional arguments.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if err == flag.ErrHelp {
				return nil, err
			}
			return nil, usagef("%v", err)
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// cmdStreams is `ingest streams <op>`.
func cmdStreams(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(e.stderr, streamsUsage)
		if len(args) == 0 {
			return usagef("streams: an operation is required")
		}
		return flag.ErrHelp
	}
	op := args[0]
	if _, ok := streamOps[op]; !ok {
		fmt.Fprint(e.stderr, streamsUsage)
		return usagef("streams: unknown operation %q", op)
	}
	fs := newFlagSet("streams "+op, e.stderr)
	fs.Usage = func() { opUsage(e.stderr, fs, op) }
	var f streamFlags
	f.register(fs)
	pos, err := parseInterleaved(fs, args[1:])
	if err != nil {
		return err
	}
	if err := f.validate(op); err != nil {
		return err
	}
	if op == "update" && f.updateFields() == 0 {
		return usagef("streams update: no field to change: give at least one of --name, --url, --%s", strings.Join(fieldFlags, ", --"))
	}
	c, err := f.client()
	if err != nil {
		return err
	}
	ctx, stop := signalContext(ctx)
	defer stop()

	need := func(n int, what string) error {
		if len(pos) != n {
			return usagef("streams %s: expected %s", op, what)
		}
		return nil
	}
	if op == "tail" {
		for _, s := range f.verifySecrets {
			registerSecrets(ingest.Secret(s))
		}
		return cmdTail(ctx, e, &f, c, pos)
	}
	var raw json.RawMessage
	switch op {
	case "list":
		if err := need(0, "no arguments"); err != nil {
			return err
		}
		if f.all {
			var list []json.RawMessage
			for s, err := range c.Streams.All(ctx, f.limit) {
				if err != nil {
					return err
				}
				list = append(list, s.Raw)
			}
			if list == nil {
				list = []json.RawMessage{}
			}
			// The shape of one page, holding them all.
			return writeJSON(e.stdout, map[string]any{"streams": list, "paginationInfo": client.PaginationInfo{HasNextPage: false}})
		}
		r, err := c.Streams.List(ctx, f.limit, f.offset)
		if err != nil {
			return err
		}
		raw = r.Raw
	case "get", "start", "stop", "delete", "usage":
		if err := need(1, "a stream ID"); err != nil {
			return err
		}
		id := pos[0]
		switch op {
		case "get":
			r, err := c.Streams.Get(ctx, id)
			if err != nil {
				return err
			}
			raw = r.Raw
		case "usage":
			r, err := c.Streams.CreditUsageStats(ctx, id)
			if err != nil {
				return err
			}
			raw = r.Raw
		default:
			action := map[string]func(context.Context, string) (*client.BaseActionResponse, error){
				"start": c.Streams.Start, "stop": c.Streams.Stop, "delete": c.Streams.Delete,
			}[op]
			r, err := action(ctx, id)
			if err != nil {
				return err
			}
			raw = r.Raw
		}
	case "create":
		if err := need(0, "no arguments (fields are flags)"); err != nil {
			return err
		}
		if f.name == "" || f.url == "" {
			return usagef("streams create: --name and --url are required")
		}
		in, err := f.directInput()
		if err != nil {
			return err
		}
		r, err := c.Streams.Create(ctx, client.CreateStreamRequest{
			Name: f.name, Description: f.description, Status: client.StreamStatus(f.status),
			Method: in.Method, URL: in.URL, Headers: in.Headers, Body: in.Body, PayloadMode: in.PayloadMode,
			PollingInterval: in.PollingInterval, JQFilter: in.JQFilter, PollingStrategies: in.PollingStrategies,
		})
		if err != nil {
			return err
		}
		raw = r.Raw
	case "update":
		if err := need(1, "a stream ID"); err != nil {
			return err
		}
		req, err := f.updateRequest()
		if err != nil {
			return err
		}
		r, err := c.Streams.Update(ctx, pos[0], req)
		if err != nil {
			return err
		}
		raw = r.Raw
	case "validate-key":
		if len(pos) > 1 {
			return usagef("streams validate-key: expected at most one KEY")
		}
		key := ""
		if len(pos) == 1 {
			key = pos[0]
			registerSecrets(ingest.Secret(key))
		}
		r, err := c.Streams.ValidateAPIKey(ctx, key)
		if err != nil {
			return err
		}
		if !r.Affected {
			if err := writeRaw(e.stdout, r.Raw); err != nil {
				return err
			}
			return errKeyInvalid
		}
		raw = r.Raw
	case "snippets":
		if err := need(1, "a stream ID"); err != nil {
			return err
		}
		r, err := c.Streams.ConnectionSnippets(ctx, client.ConnectionSnippetsRequest{StreamID: pos[0], Language: f.language})
		if err != nil {
			return err
		}
		raw = r.Raw
	case "direct-setup", "direct-session":
		if err := need(0, "no arguments (inputs are flags)"); err != nil {
			return err
		}
		if f.url == "" {
			return usagef("streams %s: --url is required", op)
		}
		in, err := f.directInput()
		if err != nil {
			return err
		}
		if op == "direct-setup" {
			r, err := c.Streams.DirectSetup(ctx, client.DirectSetupRequest{DirectInput: in, Language: f.language})
			if err != nil {
				return err
			}
			raw = r.Raw
		} else {
			if f.dkey == "" {
				return usagef("streams direct-session: --dedupe-key is required")
			}
			r, err := c.Streams.DirectSession(ctx, client.DirectSessionRequest{DirectInput: in, DedupeKey: f.dkey})
			if err != nil {
				return err
			}
			raw = r.Raw
		}
	default:
		fmt.Fprint(e.stderr, streamsUsage)
		return usagef("streams: unknown operation %q", op)
	}
	return writeRaw(e.stdout, raw)
}

// client builds the API client from flags, then -c's restless section, the
// environment and RESTLESS_API_KEY.
func (f *streamFlags) client() (*client.Client, error) {
	var ov []Override
	if flagSet(f.fs, "api-key") {
		ov = append(ov, Override{Key: "restless.api_key", Value: f.apiKey, Origin: "flag --api-key"})
	}
	if flagSet(f.fs, "base-url") {
		ov = append(ov, Override{Key: "restless.base_url", Value: f.baseURL, Origin: "flag --base-url"})
	}
	if flagSet(f.fs, "stream-base-url") {
		ov = append(ov, Override{Key: "restless.stream_base_url", Value: f.streamBaseURL, Origin: "flag --stream-base-url"})
	}
	rc, err := LoadRestless(f.file, ov)
	if err != nil {
		return nil, err
	}
	registerSecrets(rc.APIKey)
	if rc.APIKey == "" {
		return nil, usagef("no API key: pass --api-key, set RESTLESS_API_KEY, or restless.api_key in -c FILE")
	}
	c, err := client.New(rc.APIKey.Reveal(), client.WithBaseURL(rc.BaseURL), client.WithStreamBaseURL(rc.StreamBaseURL),
		client.WithTimeout(f.timeout), client.WithUserAgent("restless-ingest/"+version))
	if err != nil {
		return nil, usagef("%v", err)
	}
	return c, nil
}

// directInput reads the upstream fields shared by create and the direct operations.
func (f *streamFlags) directInput() (client.DirectInput, error) {
	in := client.DirectInput{
		URL: f.url, Method: client.HTTPMethod(strings.ToUpper(f.method)), JQFilter: f.jqFilter,
		PayloadMode: client.PayloadMode(f.payloadMode), PollingInterval: f.pollingInterval,
	}
	var err error
	if in.Headers, err = f.headerMap(); err != nil {
		return in, err
	}
	if f.body != "" {
		if err := json.Unmarshal([]byte(f.body), &in.Body); err != nil {
			return in, usagef("--body: not JSON: %v", err)
		}
	}
	if f.strategies != "" {
		if err := json.Unmarshal([]byte(f.strategies), &in.PollingStrategies); err != nil {
			return in, usagef("--polling-strategies: not a JSON array of strategies: %v", err)
		}
	}
	return in, nil
}

func (f *streamFlags) headerMap() (map[string]string, error) {
	if len(f.headers) == 0 {
		return nil, nil
	}
	m := map[string]string{}
	for _, h := range f.headers {
		k, v, ok := strings.Cut(h, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, usagef("--header %q: expected K=V", h)
		}
		m[strings.TrimSpace(k)] = v
	}
	return m, nil
}

// updateRequest sends only the fields whose flags were given.
func (f *streamFlags) updateRequest() (client.UpdateStreamRequest, error) {
	var r client.UpdateStreamRequest
	set := func(name string) bool { return flagSet(f.fs, name) }
	if set("name") {
		r.Name = client.Ptr(f.name)
	}
	if set("description") {
		r.Description = client.Ptr(f.description)
	}
	if set("status") {
		r.Status = client.Ptr(client.StreamStatus(f.status))
	}
	if set("method") {
		r.Method = client.Ptr(client.HTTPMethod(strings.ToUpper(f.method)))
	}
	if set("url") {
		r.URL = client.Ptr(f.url)
	}
	if set("payload-mode") {
		r.PayloadMode = client.Ptr(client.PayloadMode(f.payloadMode))
	}
	if set("polling-interval") {
		r.PollingInterval = client.Ptr(f.pollingInterval)
	}
	if set("jq-filter") {
		r.JQFilter = client.Ptr(f.jqFilter)
	}
	in, err := f.directInput()
	if err != nil {
		return r, err
	}
	r.Headers, r.Body, r.PollingStrategies = in.Headers, in.Body, in.PollingStrategies
	return r, nil
}

// writeRaw pretty-prints a JSON answer.
func writeRaw(w io.Writer, raw json.RawMessage) error {
	var buf bytes.Buffer
	if len(raw) == 0 {
		raw = json.RawMessage("null")
	}
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		buf.Reset()
		buf.Write(raw)
	}
	buf.WriteByte('\n')
	// Some answers echo the key (validate-key: {"id": <key>}); it never prints.
	_, err := io.WriteString(w, redactText(buf.String()))
	return err
}

func writeJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = io.WriteString(w, redactText(string(b)+"\n"))
	return err
}

// signalContext ends ctx on SIGINT or SIGTERM.
func signalContext(ctx context.Context) (context.Context, func()) {
	stop, _, release := signals()
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, func() { cancel(); release() }
}
