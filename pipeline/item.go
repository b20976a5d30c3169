package pipeline

import (
	"sync"
	"time"

	"github.com/restless-stream/ingest"
	"github.com/restless-stream/ingest/pipeline/internal/dedupe"
)

// itemKind says what the writer does with an item.
type itemKind uint8

const (
	// kindPublish: rec goes to the stream's destination.
	kindPublish itemKind = iota
	// kindDeadLetter: rec goes to the dead-letter destination.
	kindDeadLetter
	// kindDrop: nothing to write (a duplicate, or a rejected event without
	// a dead-letter destination); handled as soon as it is reached.
	kindDrop
	// kindDocument: rec is a materialised document, to the stream's
	// Materialize destination; not counted as a published event.
	kindDocument
)

// item is one frame after processing, on its way through the lane in order.
type item struct {
	rec      ingest.Record
	cursor   string    // checkpoint position once handled (cursorOf); "" leaves it
	received time.Time // when the source read the frame
	fp       dedupe.Fingerprint
	hasFP    bool // fp is claimed in the lane's filter until rec is settled
	kind     itemKind
	done     bool // acknowledged or needing no write
	// hasDoc: on a materialised stream, doc is the document (nil: unset)
	// as of this item's cursor, saved with it.
	hasDoc bool
	doc    []byte
}

// itemPool holds the items of every lane: a lane's channel carries
// pointers (8 bytes a slot rather than the item's 168), and an idle lane
// holds no items at all. A lane has at most Buffer + MaxEvents + 1 items out
// of the pool.
var itemPool = sync.Pool{New: func() any { return new(item) }}

func getItem() *item { return itemPool.Get().(*item) }

// putItem clears it, so that it keeps no event bytes alive, and pools it.
func putItem(it *item) {
	*it = item{}
	itemPool.Put(it)
}
