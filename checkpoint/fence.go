package checkpoint

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// Fencing. When several replicas share streams, a replica that lost a stream
// (paused, cut off) may still try to save its checkpoint after the new owner
// started. Such a save must never win: it would move the checkpoint back, or
// past events the new owner has not published.
//
// The new owner first claims the stream ([Claimer.Claim]): the store raises
// the stream's epoch above every earlier claim and returns the position to
// resume from. From then on only saves made through that [Claim] succeed;
// a save through an older claim fails with [ErrFenced] (NATS KV: the epoch
// is checked by compare-and-set on the key's revision) or is ignored by
// every reader (Kafka: the compacted topic keeps one key per stream and
// epoch, and the highest epoch wins).
//
// The epoch is the store's own, not the coordinator's generation or lease
// revision: those start again at 1 when the group or the coordination
// bucket is recreated (after every replica stopped, for example), while
// checkpoints outlive them. Each saved value records the holder, which the
// daemon sets to the member and its coordination token, so that an operator
// can see who wrote it.

var (
	// ErrFenced is returned by a claim's Save once the stream has been
	// claimed again: another owner took it over. The lane must stop; its
	// saves can no longer win.
	ErrFenced = errors.New("checkpoint: fenced: the stream was claimed by a newer owner")
	// ErrNotClaimed is returned by [Fenced] for a stream it holds no claim on.
	ErrNotClaimed = errors.New("checkpoint: stream not claimed by this replica")
)

// Claimer is a Store whose saves can be fenced by ownership: [NATSKV],
// [Kafka] and [Memory].
type Claimer interface {
	Store
	// Claim makes the caller the only writer of stream's checkpoint until
	// the next claim of the stream, and returns the position to resume from:
	// the last cursor saved under any earlier claim. holder is recorded with
	// every save (at most 256 bytes; the daemon uses member/token).
	Claim(ctx context.Context, stream, holder string) (*Claim, error)
}

const maxHolderLen = 256

func validateHolder(holder string) error {
	if len(holder) > maxHolderLen {
		return fmt.Errorf("checkpoint: holder longer than %d bytes", maxHolderLen)
	}
	return nil
}

// Claim is the right to save one stream's checkpoint, from [Claimer.Claim]
// until the stream is claimed again. It is a [Store] for that one stream, so
// that a lane can be given its claim as its checkpoint store. Its methods
// are safe for concurrent use; saves are made one at a time.
type Claim struct {
	stream string
	holder string
	epoch  uint64
	save   func(ctx context.Context, cursor string, doc []byte) error

	mu     sync.Mutex
	cursor string
	doc    []byte // saved with cursor; nil when none
	found  bool
	fenced bool
	closed bool
}

var _ Store = (*Claim)(nil)

// Stream is the claimed stream.
func (c *Claim) Stream() string { return c.stream }

// Epoch is the stream's epoch under this claim; every claim of a stream has
// a larger one than the claims before it.
func (c *Claim) Epoch() uint64 { return c.epoch }

// Holder is the holder recorded with every save.
func (c *Claim) Holder() string { return c.holder }

// Load returns the position to resume from: the cursor the claim found, or
// the last one saved through it.
func (c *Claim) Load(_ context.Context, stream string) (string, bool, error) {
	if err := c.check(stream); err != nil {
		return "", false, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return "", false, ErrClosed
	}
	return c.cursor, c.found, nil
}

// Save records cursor unless the stream was claimed again since, in which
// case it returns ErrFenced, now and for every later call.
func (c *Claim) Save(ctx context.Context, stream, cursor string) error {
	return c.SaveDocument(ctx, stream, cursor, nil)
}

// LoadDocument is Load with the document saved with the cursor.
func (c *Claim) LoadDocument(_ context.Context, stream string) (string, []byte, bool, error) {
	if err := c.check(stream); err != nil {
		return "", nil, false, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return "", nil, false, ErrClosed
	}
	return c.cursor, c.doc, c.found, nil
}

// SaveDocument is Save with a document (nil: none) saved with the cursor.
func (c *Claim) SaveDocument(ctx context.Context, stream, cursor string, doc []byte) error {
	if err := c.check(stream); err != nil {
		return err
	}
	if err := validateCursor(stream, cursor); err != nil {
		return err
	}
	if err := validateDocument(stream, doc); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.closed:
		return ErrClosed
	case c.fenced:
		return fmt.Errorf("checkpoint: stream %q epoch %d: %w", c.stream, c.epoch, ErrFenced)
	}
	if err := c.save(ctx, cursor, doc); err != nil {
		if errors.Is(err, ErrFenced) {
			c.fenced = true
		}
		return err
	}
	c.cursor, c.doc, c.found = cursor, doc, true
	return nil
}

// Close ends the claim for this replica: later calls return ErrClosed. It
// does not close the store the claim came from, and writes nothing.
func (c *Claim) Close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	return nil
}

func (c *Claim) check(stream string) error {
	if stream != c.stream {
		return fmt.Errorf("checkpoint: a claim of stream %q used for stream %q", c.stream, stream)
	}
	return nil
}

// Fenced is a Store that saves each stream through the claim registered for
// it and refuses the others: the store a replica's pipeline uses in cluster
// mode when it takes one store for every lane. The daemon adds a stream's
// claim when the stream is assigned, before its lane starts, and removes it
// once the lane has stopped.
type Fenced struct {
	mu     sync.Mutex
	claims map[string]*Claim
	closed bool
}

var _ Store = (*Fenced)(nil)

// NewFenced returns a Fenced store without claims.
func NewFenced() *Fenced {
	return &Fenced{claims: make(map[string]*Claim)}
}

// Add registers c for its stream, in place of any earlier claim (which is
// closed).
func (f *Fenced) Add(c *Claim) {
	f.mu.Lock()
	old := f.claims[c.stream]
	f.claims[c.stream] = c
	f.mu.Unlock()
	if old != nil && old != c {
		_ = old.Close()
	}
}

// Remove unregisters c (not a later claim of the same stream) and closes it.
func (f *Fenced) Remove(c *Claim) {
	f.mu.Lock()
	if f.claims[c.stream] == c {
		delete(f.claims, c.stream)
	}
	f.mu.Unlock()
	_ = c.Close()
}

func (f *Fenced) claim(stream string) (*Claim, error) {
	if err := ValidateStream(stream); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil, ErrClosed
	}
	c := f.claims[stream]
	if c == nil {
		return nil, fmt.Errorf("checkpoint: stream %q: %w", stream, ErrNotClaimed)
	}
	return c, nil
}

// Load returns the resume position of a claimed stream.
func (f *Fenced) Load(ctx context.Context, stream string) (string, bool, error) {
	c, err := f.claim(stream)
	if err != nil {
		return "", false, err
	}
	return c.Load(ctx, stream)
}

// Save saves through the stream's claim.
func (f *Fenced) Save(ctx context.Context, stream, cursor string) error {
	c, err := f.claim(stream)
	if err != nil {
		return err
	}
	return c.Save(ctx, stream, cursor)
}

// LoadDocument returns the resume position and document of a claimed stream.
func (f *Fenced) LoadDocument(ctx context.Context, stream string) (string, []byte, bool, error) {
	c, err := f.claim(stream)
	if err != nil {
		return "", nil, false, err
	}
	return c.LoadDocument(ctx, stream)
}

// SaveDocument saves a cursor and document through the stream's claim.
func (f *Fenced) SaveDocument(ctx context.Context, stream, cursor string, doc []byte) error {
	c, err := f.claim(stream)
	if err != nil {
		return err
	}
	return c.SaveDocument(ctx, stream, cursor, doc)
}

// Close closes every registered claim; the stores they came from stay open.
func (f *Fenced) Close() error {
	f.mu.Lock()
	claims := f.claims
	f.claims = map[string]*Claim{}
	f.closed = true
	f.mu.Unlock()
	for _, c := range claims {
		_ = c.Close()
	}
	return nil
}
