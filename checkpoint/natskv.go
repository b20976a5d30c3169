package checkpoint

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/nats-io/nats.go/jetstream"
)

// NATSKV is a Store backed by a JetStream key-value bucket: one key per
// stream. JetStream replicates and persists the bucket, so checkpoints
// survive the loss of the daemon's disk.
//
// Save writes the cursor itself as the value. A [Claim] writes a fenced
// value instead: a NUL byte, "ckpt1 " and JSON with the epoch, the holder
// and the cursor, always by compare-and-set on the key's revision, so that a
// save through an older claim can neither move the checkpoint back nor
// overwrite a newer owner's. Load reads both forms.
type NATSKV struct {
	kv     jetstream.KeyValue
	closed atomic.Bool
}

var _ Claimer = (*NATSKV)(nil)

// NewNATSKV opens bucket through js, creating it (file storage, history 1)
// when it does not exist. The store does not own the connection behind js.
func NewNATSKV(ctx context.Context, js jetstream.JetStream, bucket string) (*NATSKV, error) {
	if js == nil {
		return nil, errors.New("checkpoint: nats kv: no JetStream context")
	}
	if bucket == "" {
		return nil, errors.New("checkpoint: nats kv: empty bucket name")
	}
	kv, err := js.KeyValue(ctx, bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:      bucket,
			Description: "restless-ingest stream checkpoints",
			History:     1,
			Storage:     jetstream.FileStorage,
		})
		if errors.Is(err, jetstream.ErrBucketExists) {
			// Another process created it meanwhile.
			kv, err = js.KeyValue(ctx, bucket)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("checkpoint: nats kv: bucket %q: %w", bucket, err)
	}
	return &NATSKV{kv: kv}, nil
}

// Load returns the cursor stored under the stream's key.
func (n *NATSKV) Load(ctx context.Context, stream string) (string, bool, error) {
	if err := ValidateStream(stream); err != nil {
		return "", false, err
	}
	if n.closed.Load() {
		return "", false, ErrClosed
	}
	e, err := n.kv.Get(ctx, stream)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("checkpoint: nats kv: stream %q: load: %w", stream, err)
	}
	v, err := decodeKVValue(e.Value())
	if err != nil {
		return "", false, fmt.Errorf("checkpoint: nats kv: stream %q: %w: %v", stream, ErrCorrupt, err)
	}
	return v.cursor(), v.Cursor != nil, nil
}

// LoadDocument is Load with the document saved with the cursor.
func (n *NATSKV) LoadDocument(ctx context.Context, stream string) (string, []byte, bool, error) {
	if err := ValidateStream(stream); err != nil {
		return "", nil, false, err
	}
	if n.closed.Load() {
		return "", nil, false, ErrClosed
	}
	e, err := n.kv.Get(ctx, stream)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return "", nil, false, nil
	}
	if err != nil {
		return "", nil, false, fmt.Errorf("checkpoint: nats kv: stream %q: load: %w", stream, err)
	}
	v, err := decodeKVValue(e.Value())
	if err != nil {
		return "", nil, false, fmt.Errorf("checkpoint: nats kv: stream %q: %w: %v", stream, ErrCorrupt, err)
	}
	return v.cursor(), v.doc(), v.Cursor != nil, nil
}

// SaveDocument puts cursor and doc (nil: none) under the stream's key, in
// one value.
func (n *NATSKV) SaveDocument(ctx context.Context, stream, cursor string, doc []byte) error {
	if doc == nil {
		return n.Save(ctx, stream, cursor)
	}
	if err := ValidateStream(stream); err != nil {
		return err
	}
	if err := validateCursor(stream, cursor); err != nil {
		return err
	}
	if err := validateDocument(stream, doc); err != nil {
		return err
	}
	if n.closed.Load() {
		return ErrClosed
	}
	if _, err := n.kv.Put(ctx, stream, encodeKVValue(kvValue{Cursor: &cursor, Document: doc})); err != nil {
		return fmt.Errorf("checkpoint: nats kv: stream %q: save: %w", stream, err)
	}
	return nil
}

func (v kvValue) doc() []byte {
	if len(v.Document) == 0 {
		return nil
	}
	return v.Document
}

// fencedPrefix starts a fenced value; a cursor never holds NUL.
const fencedPrefix = "\x00ckpt1 "

// kvValue is a stored checkpoint: a plain cursor (epoch 0) or a fenced one.
//
// A value may carry the document saved with the cursor (SaveDocument): then
// it is always in the fenced form, with epoch 0 when unfenced. Values
// without one (every value written before documents existed) load with
// none.
type kvValue struct {
	Epoch    uint64          `json:"epoch"`
	Holder   string          `json:"holder"`
	Cursor   *string         `json:"cursor,omitempty"`
	Document json.RawMessage `json:"document,omitempty"`
}

func (v kvValue) cursor() string {
	if v.Cursor == nil {
		return ""
	}
	return *v.Cursor
}

func decodeKVValue(b []byte) (kvValue, error) {
	if len(b) > maxCursorLen+len(fencedPrefix)+maxHolderLen+256+MaxDocumentBytes {
		return kvValue{}, fmt.Errorf("value of %d bytes", len(b))
	}
	rest, fenced := strings.CutPrefix(string(b), fencedPrefix)
	if !fenced {
		if len(b) == 0 || len(b) > maxCursorLen {
			return kvValue{}, fmt.Errorf("value of %d bytes", len(b))
		}
		c := string(b)
		return kvValue{Cursor: &c}, nil
	}
	var v kvValue
	if err := json.Unmarshal([]byte(rest), &v); err != nil {
		return kvValue{}, fmt.Errorf("fenced value: %w", err)
	}
	if (v.Epoch == 0 && v.Document == nil) || (v.Cursor != nil && (*v.Cursor == "" || len(*v.Cursor) > maxCursorLen)) || len(v.Holder) > maxHolderLen {
		return kvValue{}, errors.New("fenced value out of range")
	}
	return v, nil
}

func encodeKVValue(v kvValue) []byte {
	return append([]byte(fencedPrefix), marshalKeepingHTML(v)...)
}

// casConflict reports a compare-and-set failure: JetStream's "wrong last
// sequence" (10071, or 10164 on replicated streams).
func casConflict(err error) bool {
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists) {
		return true
	}
	var api *jetstream.APIError
	return errors.As(err, &api) &&
		(api.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence || api.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// maxClaimAttempts bounds the compare-and-set retries of a claim: each
// failure means another write landed in between, which only a stale owner's
// save or a concurrent claim can cause.
const maxClaimAttempts = 16

// Claim raises the stream's epoch by compare-and-set and returns a claim
// resuming from the cursor stored at that moment.
func (n *NATSKV) Claim(ctx context.Context, stream, holder string) (*Claim, error) {
	if err := ValidateStream(stream); err != nil {
		return nil, err
	}
	if err := validateHolder(holder); err != nil {
		return nil, err
	}
	for range maxClaimAttempts {
		if n.closed.Load() {
			return nil, ErrClosed
		}
		var (
			cur kvValue
			rev uint64
			err error
		)
		e, err := n.kv.Get(ctx, stream)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			next := kvValue{Epoch: 1, Holder: holder}
			rev, err = n.kv.Create(ctx, stream, encodeKVValue(next))
			cur = next
		case err != nil:
			return nil, fmt.Errorf("checkpoint: nats kv: stream %q: claim: %w", stream, err)
		default:
			if cur, err = decodeKVValue(e.Value()); err != nil {
				return nil, fmt.Errorf("checkpoint: nats kv: stream %q: %w: %v", stream, ErrCorrupt, err)
			}
			cur.Epoch++
			cur.Holder = holder
			rev, err = n.kv.Update(ctx, stream, encodeKVValue(cur), e.Revision())
		}
		if casConflict(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("checkpoint: nats kv: stream %q: claim: %w", stream, err)
		}
		s := &natsClaim{kv: n.kv, closed: &n.closed, stream: stream, holder: holder, epoch: cur.Epoch, rev: rev}
		return &Claim{stream: stream, holder: holder, epoch: cur.Epoch, cursor: cur.cursor(), doc: cur.doc(), found: cur.Cursor != nil, save: s.save}, nil
	}
	return nil, fmt.Errorf("checkpoint: nats kv: stream %q: claim: the key changed under %d attempts in a row", stream, maxClaimAttempts)
}

// natsClaim saves through one claim: compare-and-set on the revision of its
// own last write.
type natsClaim struct {
	kv     jetstream.KeyValue
	closed *atomic.Bool
	stream string
	holder string
	epoch  uint64
	rev    uint64
}

func (s *natsClaim) save(ctx context.Context, cursor string, doc []byte) error {
	value := encodeKVValue(kvValue{Epoch: s.epoch, Holder: s.holder, Cursor: &cursor, Document: doc})
	for range maxClaimAttempts {
		if s.closed.Load() {
			return ErrClosed
		}
		rev, err := s.kv.Update(ctx, s.stream, value, s.rev)
		if err == nil {
			s.rev = rev
			return nil
		}
		if !casConflict(err) {
			return fmt.Errorf("checkpoint: nats kv: stream %q: save: %w", s.stream, err)
		}
		// Someone wrote the key since our last write. Only a later claim
		// may; or our previous write landed though its answer was lost.
		e, gerr := s.kv.Get(ctx, s.stream)
		if errors.Is(gerr, jetstream.ErrKeyNotFound) {
			return fmt.Errorf("checkpoint: nats kv: stream %q epoch %d: the checkpoint was deleted: %w", s.stream, s.epoch, ErrFenced)
		}
		if gerr != nil {
			return fmt.Errorf("checkpoint: nats kv: stream %q: save: %w", s.stream, gerr)
		}
		v, derr := decodeKVValue(e.Value())
		if derr != nil || v.Epoch != s.epoch || v.Holder != s.holder {
			return fmt.Errorf("checkpoint: nats kv: stream %q epoch %d: %w", s.stream, s.epoch, ErrFenced)
		}
		s.rev = e.Revision()
	}
	return fmt.Errorf("checkpoint: nats kv: stream %q: save: the key changed under %d attempts in a row", s.stream, maxClaimAttempts)
}

// Save puts cursor under the stream's key; it returns once the server stored it.
func (n *NATSKV) Save(ctx context.Context, stream, cursor string) error {
	if err := ValidateStream(stream); err != nil {
		return err
	}
	if err := validateCursor(stream, cursor); err != nil {
		return err
	}
	if n.closed.Load() {
		return ErrClosed
	}
	if _, err := n.kv.PutString(ctx, stream, cursor); err != nil {
		return fmt.Errorf("checkpoint: nats kv: stream %q: save: %w", stream, err)
	}
	return nil
}

// Close marks the store closed; the NATS connection stays open (its owner
// closes it).
func (n *NATSKV) Close() error {
	n.closed.Store(true)
	return nil
}
