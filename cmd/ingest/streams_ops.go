package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/restless-stream/ingest/client"
)

// streamOp is one operation of `ingest streams`: its synopsis and its flags
// (besides the connection flags every operation takes).
type streamOp struct {
	synopsis string
	flags    []string
}

var connectionFlags = []string{"c", "config", "api-key", "base-url", "stream-base-url", "timeout"}

var fieldFlags = []string{"description", "status", "method", "header", "body", "payload-mode", "polling-interval", "jq-filter", "polling-strategies"}

var streamOps = map[string]streamOp{
	"list":           {"list [--limit 20] [--offset 0] [--all]   list streams (--all: every page, in one answer of the same shape)", []string{"limit", "offset", "all"}},
	"get":            {"get ID   one stream", nil},
	"create":         {"create --name N --url U [fields]   create a stream (the answer holds its hmacSecret: keep it)", append([]string{"name", "url"}, fieldFlags...)},
	"update":         {"update ID [fields]   change the fields given (at least one)", append([]string{"name", "url"}, fieldFlags...)},
	"start":          {"start ID   start a stream", nil},
	"stop":           {"stop ID   stop a stream", nil},
	"delete":         {"delete ID   delete a stream", nil},
	"usage":          {"usage ID   credit usage statistics", nil},
	"validate-key":   {"validate-key [KEY]   check an API key (default: the configured one); exit 1 when it is not valid", nil},
	"snippets":       {"snippets ID [--language L]   runtime URLs and code snippets", []string{"language"}},
	"direct-setup":   {"direct-setup --url U [fields] [--language L]   commands, URLs and snippets of a direct stream", append([]string{"url", "language"}, fieldFlags...)},
	"direct-session": {"direct-session --url U --dedupe-key K [fields]   open or reuse a direct session", append([]string{"url", "dedupe-key"}, fieldFlags...)},
	"tail": {"tail (ID | --url URL | --direct-url U [fields])   print a stream's events as JSON lines until it ends",
		append([]string{"url", "direct-url", "transport", "since", "cursor", "verify-secret", "no-reconnect", "materialize", "dedupe-key"}, fieldFlags...)},
}

// opUsage prints the usage of one operation: its synopsis and its flags.
func opUsage(w io.Writer, fs *flag.FlagSet, op string) {
	o := streamOps[op]
	fmt.Fprintf(w, "Usage: ingest streams %s\n\nFlags:\n", o.synopsis)
	show := map[string]bool{}
	for _, n := range append(append([]string{}, o.flags...), connectionFlags...) {
		show[n] = true
	}
	// PrintDefaults of the operation's flags only.
	sub := flag.NewFlagSet(fs.Name(), flag.ContinueOnError)
	sub.SetOutput(w)
	fs.VisitAll(func(f *flag.Flag) {
		if show[f.Name] {
			sub.Var(f.Value, f.Name, f.Usage)
		}
	})
	sub.PrintDefaults()
}

// validate rejects bad flag values before any request: a usage error (exit
// 2), not the service's 400 (exit 1).
func (f *streamFlags) validate(op string) error {
	set := func(n string) bool { return flagSet(f.fs, n) }
	var errs []string
	bad := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	if f.limit < 1 {
		bad("--limit %d: must be at least 1", f.limit)
	}
	if f.offset < 0 {
		bad("--offset %d: must not be negative", f.offset)
	}
	if f.timeout <= 0 {
		bad("--timeout %s: must be positive", f.timeout)
	}
	if set("status") && f.status != string(client.StatusActive) && f.status != string(client.StatusInactive) {
		bad("--status %q: not ACTIVE or INACTIVE", f.status)
	}
	if set("method") {
		switch strings.ToUpper(f.method) {
		case "GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS":
		default:
			bad("--method %q: not one of GET POST PUT PATCH DELETE OPTIONS", f.method)
		}
	}
	if set("payload-mode") && f.payloadMode != "FULL_DATA" && f.payloadMode != "JSON_PATCH" {
		bad("--payload-mode %q: not FULL_DATA or JSON_PATCH", f.payloadMode)
	}
	if f.pollingInterval < 0 {
		bad("--polling-interval %g: must not be negative", f.pollingInterval)
	}
	if f.transport != "sse" && f.transport != "websocket" {
		bad("--transport %q: not sse or websocket", f.transport)
	}
	if f.since != "" && !validSince(f.since) {
		bad("--since %q: neither a timestamp (RFC 3339) nor a cursor", f.since)
	}
	if set("url") && op != "tail" && f.url != "" {
		v := &validator{}
		v.httpURL("--url", f.url)
		if len(v.errs) > 0 {
			bad("--url %q: not an absolute http(s) URL", f.url)
		}
	}
	// Flags an operation does not take are mistakes, not silently ignored.
	takes := map[string]bool{}
	for _, n := range append(append([]string{}, streamOps[op].flags...), connectionFlags...) {
		takes[n] = true
	}
	f.fs.Visit(func(fl *flag.Flag) {
		if !takes[fl.Name] {
			bad("--%s: not a flag of streams %s", fl.Name, op)
		}
	})
	if len(errs) > 0 {
		return usagef("streams %s: %s", op, strings.Join(errs, "; "))
	}
	return nil
}

// updateFields counts the field flags given to update.
func (f *streamFlags) updateFields() int {
	n := 0
	for _, name := range append([]string{"name", "url"}, fieldFlags...) {
		if flagSet(f.fs, name) {
			n++
		}
	}
	return n
}

// errKeyInvalid is validate-key's answer for a key the service does not accept.
var errKeyInvalid = errors.New("streams validate-key: the API key is not valid (affected: false)")

// restlessEnvDefaults fills restless.base_url and restless.stream_base_url from
// RESTLESS_BASE_URL and RESTLESS_STREAM_BASE_URL when neither the file, an
// INGEST_ variable nor a flag set them, as RESTLESS_API_KEY does for the key.
func restlessEnvDefaults(cfg *Config, setElsewhere func(key string) bool) {
	if v := os.Getenv(envBaseURL); v != "" && !setElsewhere("restless.base_url") {
		cfg.Restless.BaseURL = v
	}
	if v := os.Getenv(envStreamBaseURL); v != "" && !setElsewhere("restless.stream_base_url") {
		cfg.Restless.StreamBaseURL = v
	}
}

const (
	envBaseURL       = "RESTLESS_BASE_URL"
	envStreamBaseURL = "RESTLESS_STREAM_BASE_URL"
)
