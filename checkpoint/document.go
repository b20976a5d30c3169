package checkpoint

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
)

// DocumentStore is a Store that saves a stream's materialised document
// (the current document of a JSON_PATCH stream) together with its cursor,
// in one atomic save: a restart, a crash or a handover continues with the
// document that goes with the cursor it resumes from. Every store of this
// package is one, and so are claims ([Claim], [Fenced]).
//
// A nil document is "no document" (the stream's document is unset). A save
// without a document ([Store.Save]) clears the stored one; a checkpoint
// saved before documents existed loads with none.
type DocumentStore interface {
	Store
	// LoadDocument returns the saved cursor and the document saved with it
	// (nil when none was).
	LoadDocument(ctx context.Context, stream string) (cursor string, doc []byte, ok bool, err error)
	// SaveDocument records cursor and doc (nil: none) in one save.
	SaveDocument(ctx context.Context, stream, cursor string, doc []byte) error
}

// MaxDocumentBytes bounds a saved document. A lane's document is bounded by
// its stream's max_event_bytes, which the daemon keeps at or below this.
const MaxDocumentBytes = 64 << 20

var (
	_ DocumentStore = (*File)(nil)
	_ DocumentStore = (*Memory)(nil)
	_ DocumentStore = (*NATSKV)(nil)
	_ DocumentStore = (*Kafka)(nil)
	_ DocumentStore = (*Claim)(nil)
	_ DocumentStore = (*Fenced)(nil)
)

// marshalKeepingHTML is json.Marshal without the escaping of "<", ">" and
// "&", so that a saved document keeps its bytes. v holds strings, numbers,
// a time and a document already checked to be JSON: it cannot fail.
func marshalKeepingHTML(v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

func validateDocument(stream string, doc []byte) error {
	if doc == nil {
		return nil
	}
	if len(doc) > MaxDocumentBytes {
		return fmt.Errorf("checkpoint: stream %q: document of %d bytes, over the limit of %d", stream, len(doc), MaxDocumentBytes)
	}
	if !json.Valid(doc) {
		return fmt.Errorf("checkpoint: stream %q: the document is not valid JSON", stream)
	}
	return nil
}
