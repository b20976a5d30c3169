package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
)

// defaultStatusAddr is http.addr's default, where status and top look first.
const defaultStatusAddr = "127.0.0.1:9464"

// maxStatusBytes bounds the answer read from a daemon: the status of
// 100 000 streams fits several times over.
const maxStatusBytes = 64 << 20

// statusTimeout bounds one request to the daemon.
const statusTimeout = 5 * time.Second

// statusClient reads a daemon's status endpoints.
type statusClient struct {
	base string // http://host:port
	http *http.Client
	max  int64 // bound of an answer's size
}

// newStatusClient accepts host:port or an http(s) URL.
func newStatusClient(addr string, timeout time.Duration) (*statusClient, error) {
	addr = strings.TrimSpace(addr)
	if addr == "" {
		return nil, usagef("--addr: empty; give the daemon's http.addr, e.g. %s", defaultStatusAddr)
	}
	base := addr
	if !strings.Contains(addr, "://") {
		base = "http://" + addr
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return nil, usagef("--addr %q: want host:port (the daemon's http.addr) or an http:// URL of it", addr)
	}
	return &statusClient{base: u.Scheme + "://" + u.Host, http: &http.Client{Timeout: timeout}, max: maxStatusBytes}, nil
}

// unreachableError says that the daemon could not be asked.
type unreachableError struct {
	base string
	err  error
}

func (e *unreachableError) Error() string {
	return fmt.Sprintf("cannot reach the daemon at %s: %v (is `ingest run` running with http.addr set to this address?)", e.base, e.err)
}

func (e *unreachableError) Unwrap() error { return e.err }

// get fetches path and returns its body, bounded by maxStatusBytes.
func (c *statusClient) get(ctx context.Context, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, &unreachableError{base: c.base, err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, c.max+1))
	if err != nil {
		return nil, &unreachableError{base: c.base, err: err}
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("the daemon at %s answered %s to GET %s (is it an ingest with the status endpoints?)", c.base, resp.Status, path)
	}
	if int64(len(body)) > c.max {
		return nil, fmt.Errorf("the daemon at %s answered GET %s with more than %d bytes", c.base, path, c.max)
	}
	return body, nil
}

// streams fetches GET /v1/streams and returns it decoded and as received.
func (c *statusClient) streams(ctx context.Context) ([]StreamStatus, []byte, error) {
	body, err := c.get(ctx, "/v1/streams")
	if err != nil {
		return nil, nil, err
	}
	var out []StreamStatus
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, nil, fmt.Errorf("the daemon at %s answered GET /v1/streams with something that is not a list of streams: %w", c.base, err)
	}
	return out, body, nil
}

// cmdStatus is `ingest status [--addr A] [--json]`.
func cmdStatus(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet("status", e.stderr)
	addr := fs.String("addr", defaultStatusAddr, "the daemon's http.addr (host:port or http:// URL)")
	asJSON := fs.Bool("json", false, "print GET /v1/streams as received")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	c, err := newStatusClient(*addr, statusTimeout)
	if err != nil {
		return err
	}
	streams, raw, err := c.streams(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		_, err = e.stdout.Write(raw)
		return err
	}
	return printStatusTable(e.stdout, streams)
}

// statusColumns are the table's columns, in the order of the JSON's fields.
var statusColumns = []string{"NAME", "OWNER", "STATE", "CURSOR", "CHECKPOINT", "PUBLISHED", "REJECTED", "LAST EVENT", "LAG", "LAST ERROR"}

// printStatusTable prints one row per stream.
func printStatusTable(w io.Writer, streams []StreamStatus) error {
	if len(streams) == 0 {
		_, err := fmt.Fprintln(w, "no streams")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(statusColumns, "\t"))
	for _, s := range streams {
		fmt.Fprintln(tw, strings.Join([]string{
			cell(s.Name), cell(s.Owner), cell(s.State), cell(s.Cursor), cell(s.Checkpoint),
			strconv.FormatInt(s.EventsPublished, 10), strconv.FormatInt(s.EventsRejected, 10),
			formatEventTime(s.LastEventAt), formatLag(s.LagSeconds), cell(deref(s.LastError)),
		}, "\t"))
	}
	return tw.Flush()
}

// formatEventTime shows last_event_at to the second, "-" when null.
func formatEventTime(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// formatLag shows lag_seconds to the millisecond.
func formatLag(s float64) string { return strconv.FormatFloat(s, 'f', 3, 64) + "s" }

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// cell makes a value from the daemon safe for one table cell: "-" for
// nothing, and "?" for each control character (tabs, newlines, the start of
// a terminal's escape sequences), so that only text reaches the terminal.
func cell(s string) string {
	if s == "" {
		return "-"
	}
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == unicode.ReplacementChar {
			return '?'
		}
		return r
	}, s)
}
