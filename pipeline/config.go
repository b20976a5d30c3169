package pipeline

import (
	"context"
	"time"

	"github.com/restless-stream/ingest"
	"github.com/restless-stream/ingest/client"
)

// Source is where a lane reads frames. The sources of source/sse, source/ws
// and source/direct satisfy it.
type Source interface {
	// Next blocks for the next frame. It returns ingest.ErrStreamEnded when
	// the server ended the stream for good, ctx.Err() when ctx ends, and any
	// other error when the source stopped for good. The frame's Data belongs
	// to the pipeline once Next returns it.
	Next(ctx context.Context) (ingest.Frame, error)
	// Close ends the source; no goroutine of it outlives Close.
	Close() error
}

// Sink is where lanes write records. Lanes call Write concurrently.
type Sink interface {
	// Write returns nil only when the broker acknowledged every record; otherwise an
	// error, ideally ingest.WriteErrors (index-aligned) so only failed records are resent.
	//
	// The pipeline reuses the recs slice after Write returns; the records
	// themselves (and their Value, Key and Headers) are never changed.
	Write(ctx context.Context, recs []ingest.Record) error
}

// VerifyMode says when a stream checks the HMAC signature of its events.
type VerifyMode string

// Verify modes. The zero value means VerifyRequire when the stream has a
// Verifier, else VerifyOff.
const (
	// VerifyRequire rejects an event whose signature is missing
	// (signature_missing) or does not match (signature_invalid): every
	// update, and an error event that carries data (not null). An error
	// event without data passes, marked unverified.
	VerifyRequire VerifyMode = "require"
	// VerifyOptional checks a signature when one is present and rejects it
	// when it does not match; unsigned events pass, marked unverified.
	VerifyOptional VerifyMode = "optional"
	// VerifyOff never checks; every event is marked unverified.
	VerifyOff VerifyMode = "off"
)

// KeyMode says which record key a stream's records carry (sink.kafka.key).
type KeyMode string

// Key modes. The zero value means KeyStream.
const (
	// KeyStream keys every record with the stream's name: one stream stays
	// ordered in one Kafka partition.
	KeyStream KeyMode = "stream"
	// KeyEventID keys a record with its event_id (the stream's name when the
	// event has none): spreads a stream over partitions, giving up its order.
	KeyEventID KeyMode = "event_id"
	// KeyNone leaves the key nil.
	KeyNone KeyMode = "none"
)

// StreamConfig describes one stream: where it comes from, how its events are
// checked, and where they go.
type StreamConfig struct {
	// Name identifies the stream in records, checkpoints and metrics.
	// Required; 1–200 characters from [a-z0-9_-]; unique.
	Name string
	// Destination is the topic or subject of its records. Default
	// "restless.<Name>" (client.DefaultDestination).
	Destination string
	// Open opens the stream's source. cursor is the stream's checkpoint, ""
	// when none exists: then the source starts from its own configured since.
	// Required. An error ends the stream's lane with that error.
	Open func(ctx context.Context, cursor string) (Source, error)
	// Verifier checks HMAC signatures. Required unless VerifyMode is off.
	Verifier *client.Verifier
	// VerifyMode: default VerifyRequire with a Verifier, else VerifyOff.
	VerifyMode VerifyMode
	// MaxEventBytes rejects larger events as too_large. Default 4194304
	// (DefaultMaxEventBytes).
	MaxEventBytes int
	// KeyMode chooses the record key. Default KeyStream.
	KeyMode KeyMode
	// Materialize, when not "", is the destination of the stream's
	// materialised document (a JSON_PATCH stream's current document,
	// client.Document): after each accepted event that sets the document,
	// the whole document is published there too, with the event's headers
	// plus restless-materialized: true, keyed by the stream name. A patch
	// that fails is rejected as patch_failed (a copy to DeadLetter; the
	// event's own record is still published) and no document is published
	// until the next full document. The document is saved with the
	// checkpoint, so the store must be a checkpoint.DocumentStore; it is
	// bounded by MaxEventBytes (at most checkpoint.MaxDocumentBytes).
	Materialize string
}

// DedupeConfig bounds the window of remembered event ids of each stream.
type DedupeConfig struct {
	// Size is the most ids remembered per stream, at most MaxDedupeSize.
	// Default 100000.
	Size int
	// TTL forgets an id this long after its publish was acknowledged,
	// counted in whole seconds: an id is forgotten at the latest TTL rounded
	// up to a second, plus one second, after. Default 24h.
	TTL time.Duration
}

// BatchConfig bounds a lane's batches.
type BatchConfig struct {
	// MaxEvents is the most events in one Write, at most MaxBatchEvents.
	// Default 512.
	MaxEvents int
	// MaxWait is how long a batch waits for more events after its first
	// one. Default 5ms.
	MaxWait time.Duration
}

// Config configures a Pipeline.
type Config struct {
	// Streams are the lanes to run first; at least one unless KeepRunning.
	// Start and Stop change the set while the pipeline runs.
	Streams []StreamConfig
	// KeepRunning keeps Run running while no lane runs, until Shutdown or
	// the end of its context: for a set that Start fills later (streams
	// discovered while running). Without it Run returns once every lane
	// has ended.
	KeepRunning bool
	// Dedupe bounds each stream's window of remembered event ids.
	Dedupe DedupeConfig
	// Batch bounds each lane's batches.
	Batch BatchConfig
	// DeadLetter is the destination of rejected events; "" counts and drops
	// them.
	DeadLetter string
	// Retry spaces the retries of a failed Write. MaxAttempts is ignored:
	// a lane retries until the pipeline stops, so a broker outage never
	// drops events. Default Initial 100ms, Max 5s.
	Retry client.Backoff
	// CheckpointInterval chooses how checkpoints are saved. 0, the default,
	// saves after every acknowledged batch, before the lane writes the next
	// one: after a crash at most the batch that was in flight is written
	// again, which is what bounds repeats on brokers without duplicate
	// detection (Kafka). A positive value instead saves beside the lane, at
	// most once per interval, coalescing in between: fewer disk writes, but
	// a crash then repeats what was acknowledged in the last interval too.
	CheckpointInterval time.Duration
	// Buffer is how many processed events a lane holds ahead of its writer,
	// at most MaxBatchEvents; with the batch being written and the frame its
	// reader holds while the buffer is full, a lane holds at most
	// Buffer+MaxEvents+1 events (the package doc, "Memory"). Default
	// Batch.MaxEvents: the reader fills the next batch while the writer
	// writes one, and a busy lane holds about two batches of event bytes
	// (1 MiB of 1 KiB events with the defaults).
	Buffer int
}

// Defaults of Config, as documented on its fields.
const (
	DefaultMaxEventBytes  = client.DefaultMaxEventBytes
	DefaultDedupeSize     = 100000
	DefaultDedupeTTL      = 24 * time.Hour
	DefaultBatchMaxEvents = 512
	DefaultBatchMaxWait   = 5 * time.Millisecond
	DefaultRetryInitial   = 100 * time.Millisecond
	DefaultRetryMax       = 5 * time.Second
)

// Bounds of Config.
const (
	// MaxBatchEvents bounds BatchConfig.MaxEvents and Config.Buffer: a
	// lane's buffer is allocated up front.
	MaxBatchEvents = 1_000_000
	// MaxDedupeSize bounds DedupeConfig.Size: the window indexes its ids
	// with 32 bits.
	MaxDedupeSize = 1 << 30
)
