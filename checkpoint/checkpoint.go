// Package checkpoint stores the resume position (the last handled event_id)
// of each stream, so that a restarted daemon carries on where it stopped.
//
// Four stores implement [Store]: [File] (one small file per stream, written
// atomically), [NATSKV] (a JetStream key-value bucket), [Kafka] (a compacted
// topic) and [Memory] (for tests and for runs that need no durability). The
// three that several replicas can share are also [Claimer]s: their saves can
// be fenced by ownership (see [Claim]).
//
// A store only ever holds what its caller saved: the pipeline saves a cursor
// only after the broker acknowledged that event and every event before it.
package checkpoint

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Store keeps one cursor per stream. Implementations are safe for concurrent
// use.
type Store interface {
	// Load returns the saved cursor of stream; ok is false when none was saved.
	// A stored value that cannot be read back intact is an error, never "none".
	Load(ctx context.Context, stream string) (cursor string, ok bool, err error)
	// Save records cursor as the resume position of stream, durably when the
	// store is durable, before it returns.
	Save(ctx context.Context, stream, cursor string) error
	// Close releases the store. Later calls return ErrClosed.
	Close() error
}

var (
	// ErrClosed is returned by a store used after Close.
	ErrClosed = errors.New("checkpoint: store closed")
	// ErrCorrupt is wrapped by Load when a stored checkpoint is damaged
	// (torn, truncated or edited): the position is unknown and replaying from
	// `since` silently would be wrong, so the caller must decide.
	ErrCorrupt = errors.New("checkpoint: corrupt checkpoint")
)

// maxNameLen bounds stream names so that file names and KV keys stay valid.
const maxNameLen = 200

// maxCursorLen bounds a cursor. Cursors are event ids, a few dozen bytes.
const maxCursorLen = 64 << 10

// ValidateStream reports whether name can be used as a stream name in every
// store: 1 to 200 characters from [a-z0-9_-].
func ValidateStream(name string) error {
	if name == "" {
		return errors.New("checkpoint: empty stream name")
	}
	if len(name) > maxNameLen {
		return fmt.Errorf("checkpoint: stream name longer than %d bytes", maxNameLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' {
			continue
		}
		return fmt.Errorf("checkpoint: stream name %q: character %q at %d is not one of [a-z0-9_-]", name, c, i)
	}
	return nil
}

func validateCursor(stream, cursor string) error {
	if cursor == "" {
		return fmt.Errorf("checkpoint: stream %q: empty cursor", stream)
	}
	if len(cursor) > maxCursorLen {
		return fmt.Errorf("checkpoint: stream %q: cursor longer than %d bytes", stream, maxCursorLen)
	}
	// An event id never holds NUL (an SSE id with one is ignored), and the
	// NATS KV store marks its fenced values with a leading NUL.
	if strings.IndexByte(cursor, 0) >= 0 {
		return fmt.Errorf("checkpoint: stream %q: cursor contains a NUL byte", stream)
	}
	return nil
}
