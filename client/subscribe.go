package client

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"net/http"
	"slices"
	"time"

	"github.com/restless-stream/ingest/client/internal/stream"
)

// DefaultIdleTimeout is the idle timeout of a subscription unless
// WithIdleTimeout says otherwise.
const DefaultIdleTimeout = 60 * time.Second

// SubscribeOption configures a subscription: the Subscribe functions and
// the Open functions of StreamsService take them.
type SubscribeOption func(*subscribeSettings)

type subscribeSettings struct {
	cursor, since   string
	once            bool
	policy          stream.Policy
	limitReconnects bool
	maxReconnects   int
	openTimeout     time.Duration
	idleTimeout     time.Duration
	maxEventBytes   int
	header          http.Header
	verifier        *Verifier
	onState         func(StateChange)
	dedupeKey       string
	maxSilence      time.Duration
	explicit        bool // only Subscription.Progress restarts the attempt count
	dropped         error
	errs            []error
}

func (s *subscribeSettings) fail(format string, args ...any) {
	s.errs = append(s.errs, fmt.Errorf(format, args...))
}

// WithCursor starts the subscription after cursor, an event_id (or SSE id)
// saved earlier: it is sent as Last-Event-ID (SSE) and cursor= (SSE and
// WebSocket). The subscription then follows the events' cursors by itself,
// so that every reconnect resumes after the last event received.
//
// A cursor that CheckEventID refuses cannot be sent (it would fail every
// request): the subscription drops it and starts from WithSince, or from the
// live end of the stream without it, and reports a *CursorError as the Err
// of its first StateChange and from Subscription.DroppedCursor. Events
// between the dropped cursor and the new start may be missed or repeated.
func WithCursor(cursor string) SubscribeOption {
	return func(s *subscribeSettings) { s.cursor = cursor }
}

// WithSince starts the subscription at since, an ISO-8601 timestamp or a
// cursor, sent as since= until a cursor is known.
func WithSince(since string) SubscribeOption {
	return func(s *subscribeSettings) { s.since = since }
}

// WithReconnect turns reconnecting on (the default) or off. Off, the
// subscription ends when its one connection ends: cleanly (the iteration
// simply stops) when the server ended it in order, with the error
// otherwise.
func WithReconnect(on bool) SubscribeOption {
	return func(s *subscribeSettings) { s.once = !on }
}

// WithMaxReconnects ends the subscription after n reconnects, counted over
// its whole life as the Python SDK's max_reconnects counts them: a
// reconnect counts whatever the connection before it delivered, so n = 3
// allows four connections in all. The iteration then ends with an error
// matching ErrReconnectsExhausted. Without this option there is no limit;
// n must not be negative.
func WithMaxReconnects(n int) SubscribeOption {
	return func(s *subscribeSettings) {
		if n < 0 {
			s.fail("restless: subscribe: max reconnects %d is negative", n)
		}
		s.limitReconnects, s.maxReconnects = true, n
	}
}

// WithRetryDelay waits exactly d before every reconnect, like the Python
// SDK's retry_seconds: no growth, no jitter; a server's Retry-After or
// retry: asking for longer is honoured up to MaxRetryAfter. d must be at
// least MinReconnectDelay (10ms). The default is the jittered Backoff{}; the
// last of WithRetryDelay and WithBackoff wins.
func WithRetryDelay(d time.Duration) SubscribeOption {
	return func(s *subscribeSettings) {
		if d <= 0 {
			s.fail("restless: subscribe: retry delay %v is not positive", d)
		} else if d < MinReconnectDelay {
			s.errs = append(s.errs, durationFloor("retry delay", d))
		}
		s.policy = stream.Policy{Initial: d, Max: d, Fixed: true}
	}
}

// WithBackoff paces reconnects with b (see Backoff; the default is
// Backoff{}). Its fields must not be negative, and a non-zero Initial must
// be at least MinReconnectDelay (10ms).
func WithBackoff(b Backoff) SubscribeOption {
	return func(s *subscribeSettings) {
		if b.Initial < 0 || b.Max < 0 || b.MaxAttempts < 0 {
			s.fail("restless: subscribe: backoff %+v has a negative field", b)
		} else if b.Initial > 0 && b.Initial < MinReconnectDelay {
			s.errs = append(s.errs, durationFloor("backoff initial delay", b.Initial))
		}
		s.policy = b.policy()
	}
}

// WithOpenTimeout bounds the opening of each connection: the dial and the
// response headers (SSE) or the WebSocket handshake. It is the Python SDK's
// open_timeout of websockets.connect. By default only the idle timeout
// bounds it. d must not be negative; 0 means the default.
func WithOpenTimeout(d time.Duration) SubscribeOption {
	return func(s *subscribeSettings) {
		if d < 0 {
			s.fail("restless: subscribe: open timeout %v is negative", d)
		}
		s.openTimeout = d
	}
}

// WithIdleTimeout ends a connection, and reconnects, when the server sends
// no byte for d (comments, heartbeats, pings and pongs count; time spent
// waiting for a slow consumer does not). Over WebSocket the subscription
// pings every d/2. Default DefaultIdleTimeout (60s); d must not be
// negative; 0 means the default.
func WithIdleTimeout(d time.Duration) SubscribeOption {
	return func(s *subscribeSettings) {
		if d < 0 {
			s.fail("restless: subscribe: idle timeout %v is negative", d)
		}
		s.idleTimeout = d
	}
}

// WithMaxEventBytes limits one event to n bytes. A larger event is cut (a
// RawEvent marked TooLarge; the Subscribe functions yield an error matching
// ErrEventTooLarge) and the subscription goes on. Default
// DefaultMaxEventBytes (4 MiB); n must not be negative; 0 means the
// default.
func WithMaxEventBytes(n int) SubscribeOption {
	return func(s *subscribeSettings) {
		if n < 0 {
			s.fail("restless: subscribe: max event bytes %d is negative", n)
		}
		s.maxEventBytes = n
	}
}

// WithHeader adds h to every runtime request (the SSE request or the
// WebSocket handshake), like the Python SDK's extra headers. The
// subscription's own headers win: Accept, Cache-Control, Accept-Encoding
// and Last-Event-ID on SSE, the handshake headers on WebSocket. When the
// Client has an API key it owns Authorization, and an Authorization in h is
// an error. h is copied.
func WithHeader(h http.Header) SubscribeOption {
	return func(s *subscribeSettings) {
		if s.header == nil {
			s.header = http.Header{}
		}
		for k, vs := range h {
			for _, v := range vs {
				s.header.Add(k, v)
			}
		}
	}
}

// WithVerifier makes the Subscribe functions verify the signature of every
// update event with v. An event that fails is yielded as a *SignatureError
// (matching ErrSignatureMissing or ErrSignatureInvalid), not as an event,
// and the iteration goes on. Error events carry no signature and are not
// verified. Subscription.Next returns raw events and ignores v.
func WithVerifier(v *Verifier) SubscribeOption {
	return func(s *subscribeSettings) { s.verifier = v }
}

// WithMaxSilence ends a connection, and reconnects, when no event arrives
// for d while the subscription waits on the server: unlike the idle
// timeout, comments, heartbeats, pings and partial messages do not count,
// and neither does time spent waiting for a slow consumer. The error
// reported for the connection matches ErrMaxSilence. 0, the default, turns
// it off; d must not be negative.
func WithMaxSilence(d time.Duration) SubscribeOption {
	return func(s *subscribeSettings) {
		if d < 0 {
			s.fail("restless: subscribe: max silence %v is negative", d)
		}
		s.maxSilence = d
	}
}

// WithExplicitProgress makes only Subscription.Progress restart the count
// of consecutive failed reconnect attempts (Backoff.MaxAttempts). Without
// it, any connection that delivered an event restarts the count, so a
// server that sends one bad or repeated event per connection never
// exhausts the budget. A consumer that rejects or drops events (a bad
// signature, a duplicate) should set it and call Progress for each event it
// accepts. The Subscribe functions always work this way: an event they
// yield decoded (and verified, with WithVerifier) is progress.
func WithExplicitProgress() SubscribeOption {
	return func(s *subscribeSettings) { s.explicit = true }
}

// WithStateFunc calls f on every change of the connection's state, from the
// subscription's goroutine; f must not block. It is how a caller learns of
// reconnects, which the iteration does not yield.
func WithStateFunc(f func(StateChange)) SubscribeOption {
	return func(s *subscribeSettings) { s.onState = f }
}

// WithDirectSession makes a direct subscription open (or reuse, server
// side) the direct session of dedupeKey through the REST API and follow its
// server-issued URL, instead of building the direct URL. When the session
// has expired at reconnect time, or the server refuses its URL (401, 403,
// 404 or 410), the session is opened again with the same key and the
// subscription continues from the same cursor; a new session refused as
// well ends it. Only the direct subscriptions take this option.
func WithDirectSession(dedupeKey string) SubscribeOption {
	return func(s *subscribeSettings) {
		if dedupeKey == "" {
			s.fail("restless: subscribe: the direct session's dedupe key is empty")
		}
		s.dedupeKey = dedupeKey
	}
}

// settings applies opts over the defaults and checks them against the
// Client: an Authorization header is the Client's when it has a key.
func (s *StreamsService) settings(direct bool, opts []SubscribeOption) (*subscribeSettings, error) {
	set := &subscribeSettings{idleTimeout: DefaultIdleTimeout, maxEventBytes: DefaultMaxEventBytes}
	for _, o := range opts {
		o(set)
	}
	if set.idleTimeout == 0 {
		set.idleTimeout = DefaultIdleTimeout
	}
	if set.maxEventBytes == 0 {
		set.maxEventBytes = DefaultMaxEventBytes
	}
	if set.dedupeKey != "" && !direct {
		set.fail("restless: subscribe: WithDirectSession applies to direct subscriptions only")
	}
	if s.c.apiKey != "" && set.header.Get("Authorization") != "" {
		set.fail("restless: subscribe: WithHeader sets Authorization, which the Client's API key owns")
	}
	for k, vs := range set.header {
		for _, v := range vs {
			if !validHeader(k, v) {
				set.fail("restless: subscribe: header %q is not a valid HTTP header", k)
			}
		}
	}
	if set.cursor != "" {
		if err := CheckEventID(set.cursor); err != nil {
			set.dropped = &CursorError{Cursor: quoteCut(set.cursor, 64), Err: err}
			set.cursor = ""
		}
	}
	set.policy.Once = set.once
	set.policy.LimitReconnects, set.policy.MaxReconnects = set.limitReconnects, set.maxReconnects
	return set, errors.Join(set.errs...)
}

// validHeader reports whether k: v can be sent: a token name and a value
// without line breaks or NUL.
func validHeader(k, v string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c <= ' ' || c >= 0x7f || c == ':' {
			return false
		}
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c == '\r' || c == '\n' || c == 0 {
			return false
		}
	}
	return true
}

// open wraps a Dialer in a Subscription.
func (s *StreamsService) open(d stream.Dialer, set *subscribeSettings) *Subscription {
	return &Subscription{
		r: stream.New(stream.Config{
			Dialer:           d,
			Cursor:           set.cursor,
			Policy:           set.policy,
			OnState:          stateFunc(set.onState),
			ExplicitProgress: set.explicit,
			MaxSilence:       set.maxSilence,
			StartErr:         set.dropped,
		}),
		verify:  set.verifier,
		maxSize: set.maxEventBytes,
		dropped: set.dropped,
	}
}

// OpenSSE returns a Subscription to the SSE runtime URL rawURL (a managed
// stream's, a session's, or any server-issued URL; BuildSSEURL makes one).
// It checks its arguments and connects on the first Next.
//
// Requests carry "Accept: text/event-stream", "Cache-Control: no-cache",
// "Accept-Encoding: identity" (so that no transparent gzip holds events
// back), the Bearer key, and the cursor as Last-Event-ID and cursor=
// (since= before any cursor). Answers:
//   - 200 with a text/event-stream content type (parameters allowed)
//     streams, decoded as the WHATWG algorithm says (package client/sse);
//   - 204 ends the stream for good (ErrStreamEnded);
//   - 401, 403 and any other 4xx but 408 and 429 end the subscription
//     (*StatusError);
//   - 408, 429, 5xx, network errors, the end of the response and the idle
//     timeout reconnect with backoff, waiting at least what Retry-After or
//     the stream's retry: field asked for, within the backoff's Max;
//   - 200 with another content type is taken for a transient fault (a
//     proxy's error page): it reconnects, and the error names the type;
//   - a server that compresses despite "identity" is tolerated for gzip
//     (decoded as the bytes arrive); any other Content-Encoding fails the
//     connection with an error naming it, and it reconnects.
//
// The cursor of an event is the SSE id in effect, or the event_id read from
// the data when the stream sends no id. An event with empty data ("data:"
// alone) is a raw event with empty Data, as over WebSocket an empty message
// is: decoding it fails.
func (s *StreamsService) OpenSSE(rawURL string, opts ...SubscribeOption) (*Subscription, error) {
	set, err := s.settings(false, opts)
	if err != nil {
		return nil, err
	}
	d, err := s.newSSEDialer(rawURL, set)
	if err != nil {
		return nil, err
	}
	return s.open(d, set), nil
}

// OpenWebSocket returns a Subscription to the WebSocket runtime URL rawURL;
// ws:// and wss:// are used as they are, http:// and https:// converted as
// ToWebSocketURL does. It connects on the first Next.
//
// It reads one event per text message, byte for byte, so that a malformed
// event never closes the link; resumes with cursor= in the query; answers
// the handshake's HTTP statuses as OpenSSE does; and reconnects on any
// close or error (with reconnecting off, a close with status 1000 or 1001
// is an orderly end). A message longer than the size limit is cut, the rest
// read and dropped without being held, and the event marked TooLarge; the
// link stays open. It pings every idle timeout/2, and the idle watchdog
// ends a link on which no byte at all (messages, pings, pongs) arrived for
// the idle timeout while the subscription waited on the server; time spent
// waiting for a slow consumer never counts.
func (s *StreamsService) OpenWebSocket(rawURL string, opts ...SubscribeOption) (*Subscription, error) {
	set, err := s.settings(false, opts)
	if err != nil {
		return nil, err
	}
	d, err := s.newWSDialer(rawURL, set)
	if err != nil {
		return nil, err
	}
	return s.open(d, set), nil
}

// OpenDirectSSE returns a Subscription to the direct stream of in over SSE:
// the URL BuildDirectSSEURL makes on the Client's stream base URL, or with
// WithDirectSession the session's. It connects on the first Next.
func (s *StreamsService) OpenDirectSSE(in DirectInput, opts ...SubscribeOption) (*Subscription, error) {
	return s.openDirect(in, false, opts)
}

// OpenDirectWebSocket is OpenDirectSSE over WebSocket.
func (s *StreamsService) OpenDirectWebSocket(in DirectInput, opts ...SubscribeOption) (*Subscription, error) {
	return s.openDirect(in, true, opts)
}

func (s *StreamsService) openDirect(in DirectInput, ws bool, opts []SubscribeOption) (*Subscription, error) {
	set, err := s.settings(true, opts)
	if err != nil {
		return nil, err
	}
	d, err := s.newDirectDialer(in, ws, set)
	if err != nil {
		return nil, err
	}
	return s.open(d, set), nil
}

// iterOpts returns opts for the Subscribe functions: progress is what they
// yield decoded and verified.
func iterOpts(opts []SubscribeOption) []SubscribeOption {
	return append(slices.Clip(opts), WithExplicitProgress())
}

// subscribe is the iteration of the Subscribe functions over what open
// returns.
func subscribe(ctx context.Context, open func() (*Subscription, error)) iter.Seq2[*Event, error] {
	return func(yield func(*Event, error) bool) {
		sub, err := open()
		if err != nil {
			yield(nil, err)
			return
		}
		defer sub.Close()
		sub.events(ctx, yield)
	}
}

// SubscribeSSE subscribes to the SSE runtime URL rawURL (see OpenSSE) and
// yields its events, decoded, as they arrive: the Python SDK's
// subscribe_sse.
//
//	for ev, err := range c.Streams.SubscribeSSE(ctx, u) {
//		if err != nil { … }
//	}
//
// The Client's API key is sent as "Authorization: Bearer", and its
// http.Client carries the requests (without its Timeout: a stream is long
// lived, bounded by ctx and the idle timeout). Reconnecting is internal and
// resumes after the last event; WithStateFunc reports it.
//
// Errors come in two kinds. An event that cannot be used is yielded as an
// error and the iteration goes on, since a bad event is not a broken
// stream: a *ParseError for an event that does not decode, an error
// matching ErrEventTooLarge, and a *SignatureError with WithVerifier. Any
// other error is the last thing yielded: a bad option, a refused
// connection (*StatusError), an exhausted reconnect budget
// (ErrReconnectsExhausted), a failed connection with reconnecting off, or
// ctx.Err() once ctx ends. When the server ends the stream (HTTP 204, or
// with reconnecting off an orderly end) the iteration just stops.
//
// Breaking out of the loop or cancelling ctx closes the connection; no
// goroutine outlives the iteration.
func (s *StreamsService) SubscribeSSE(ctx context.Context, rawURL string, opts ...SubscribeOption) iter.Seq2[*Event, error] {
	return subscribe(ctx, func() (*Subscription, error) { return s.OpenSSE(rawURL, iterOpts(opts)...) })
}

// SubscribeDirectSSE subscribes to the direct stream of in over SSE (see
// OpenDirectSSE) and yields its events as SubscribeSSE does: the Python
// SDK's subscribe_direct_sse.
func (s *StreamsService) SubscribeDirectSSE(ctx context.Context, in DirectInput, opts ...SubscribeOption) iter.Seq2[*Event, error] {
	return subscribe(ctx, func() (*Subscription, error) { return s.OpenDirectSSE(in, iterOpts(opts)...) })
}

// SubscribeWebSocket subscribes to the WebSocket runtime URL rawURL (see
// OpenWebSocket) and yields its events as SubscribeSSE does: the Python
// SDK's subscribe_websocket.
func (s *StreamsService) SubscribeWebSocket(ctx context.Context, rawURL string, opts ...SubscribeOption) iter.Seq2[*Event, error] {
	return subscribe(ctx, func() (*Subscription, error) { return s.OpenWebSocket(rawURL, iterOpts(opts)...) })
}

// SubscribeDirectWebSocket subscribes to the direct stream of in over
// WebSocket (see OpenDirectWebSocket) and yields its events as SubscribeSSE
// does: the Python SDK's subscribe_direct_websocket.
func (s *StreamsService) SubscribeDirectWebSocket(ctx context.Context, in DirectInput, opts ...SubscribeOption) iter.Seq2[*Event, error] {
	return subscribe(ctx, func() (*Subscription, error) { return s.OpenDirectWebSocket(in, iterOpts(opts)...) })
}
