package pipeline

import (
	"strconv"
	"sync"
	"time"

	"github.com/restless-stream/ingest"
	"github.com/restless-stream/ingest/client"
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
)

// item is one frame after processing, on its way through the lane in order.
type item struct {
	rec      ingest.Record
	cursor   string    // checkpoint position once handled; "" leaves it
	received time.Time // when the source read the frame
	fp       fingerprint
	hasFP    bool // fp is in the lane's in-flight set until rec is acknowledged
	kind     itemKind
	done     bool // acknowledged or needing no write
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

// dedupe is a stream's memory of event ids: those acknowledged (the window)
// and those on their way (in flight). The processor checks and fills the
// in-flight set; the writer moves ids into the window on acknowledgement.
type dedupe struct {
	mu       sync.Mutex
	win      *window
	inflight map[fingerprint]struct{}
}

// seenOrClaim reports whether fp is a duplicate; when it is not, it claims
// fp as in flight.
func (d *dedupe) seenOrClaim(fp fingerprint, now int64) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.inflight[fp]; ok || d.win.Contains(fp, now) {
		return true
	}
	d.inflight[fp] = struct{}{}
	return false
}

// acknowledge moves the claimed fingerprints of acknowledged items into the
// window.
func (d *dedupe) acknowledge(items []*item, idx []int, acked func(i int) bool, now int64) {
	d.settle(items, idx, acked, now, true)
}

// release gives up the claims of items the broker refused for good: they
// were not published, so a later copy of the same id is not a duplicate.
func (d *dedupe) release(items []*item, idx []int, refused func(i int) bool) {
	d.settle(items, idx, refused, 0, false)
}

// close frees the window's memory once the lane's reader and writer are
// done with it.
func (d *dedupe) close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.win.close()
}

func (d *dedupe) settle(items []*item, idx []int, pick func(i int) bool, now int64, remember bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for i, j := range idx {
		it := items[j]
		if !it.hasFP || !pick(i) {
			continue
		}
		delete(d.inflight, it.fp) // claimed once: a second copy is a duplicate
		if remember {
			d.win.Add(it.fp, now)
		}
		it.hasFP = false
	}
}

// headerSlabSize is how many records' headers share one allocation.
const headerSlabSize = 128

const headersPerRecord = 6

// processor turns frames into items. It belongs to one lane's reader
// goroutine; only its dedupe is shared.
type processor struct {
	cfg        StreamConfig
	deadLetter string
	key        []byte // the stream name, shared by every record keyed by it
	obs        StreamObserver
	dd         *dedupe
	now        func() time.Time

	ev   client.Event    // reused for every frame
	slab []ingest.Header // headers are cut from here
	// canonSkip counts down the events decoded without trying
	// DecodeEventCanonical after it said no.
	canonSkip int
}

// canonRetry is how many events a lane decodes the plain way after one whose
// data was not canonical.
const canonRetry = 64

func newProcessor(cfg StreamConfig, deadLetter string, obs StreamObserver, dd *dedupe) *processor {
	return &processor{cfg: cfg, deadLetter: deadLetter, key: []byte(cfg.Name), obs: obs, dd: dd, now: time.Now}
}

func (p *processor) headers(n int) []ingest.Header {
	if len(p.slab) < n {
		p.slab = make([]ingest.Header, headersPerRecord*headerSlabSize)
	}
	h := p.slab[:0:n] // full slice expression: an append by a sink copies
	p.slab = p.slab[n:]
	return h
}

// process turns frame f into *it. f.Data becomes the record's value without
// a copy.
func (p *processor) process(f ingest.Frame, it *item) {
	p.obs.Received()
	now := p.now()
	*it = item{received: f.Received, cursor: f.Cursor}
	if it.received.IsZero() {
		it.received = now
	}

	if f.TooLarge || len(f.Data) > p.cfg.MaxEventBytes {
		data := f.Data
		if len(data) > p.cfg.MaxEventBytes {
			data = data[:p.cfg.MaxEventBytes]
		}
		id, _ := client.EventIDOf(data)
		if id != "" {
			it.cursor = id
		}
		p.reject(it, ingest.ReasonTooLarge, p.tooLargeError(len(f.Data), f.TooLarge), data, id)
		return
	}
	if f.Err != nil { // the source refused the event (an SSE id that cannot be a cursor)
		p.reject(it, ingest.ReasonParseError, f.Err.Error(), f.Data, "")
		return
	}

	ev := &p.ev
	// With verification on, data in canonical form (the form the service
	// signs) is checked once, in the pass that delimits it, instead of by
	// the decoder and again by the verifier. Anything else gets the full
	// decoder's answer; a stream whose data is not canonical stops trying
	// for a while, so it pays for the attempt rarely.
	canonical := false
	if p.cfg.VerifyMode != VerifyOff {
		if p.canonSkip == 0 {
			if canonical = client.DecodeEventCanonical(f.Data, ev); !canonical {
				p.canonSkip = canonRetry
			}
		} else {
			p.canonSkip--
		}
	}
	if !canonical {
		if err := client.DecodeEvent(f.Data, ev); err != nil {
			id, _ := client.EventIDOf(f.Data)
			if id != "" {
				it.cursor = id
			}
			p.reject(it, ingest.ReasonParseError, err.Error(), f.Data, id)
			return
		}
	}
	if ev.EventID != "" {
		it.cursor = ev.EventID
	}

	verified := false
	if ev.Type == client.EventUpdate && p.cfg.VerifyMode != VerifyOff {
		// Error events carry no data and are never signed: they pass
		// unverified whatever the mode (PROTOCOL.md §4).
		switch {
		case ev.Signature == "" && p.cfg.VerifyMode == VerifyRequire:
			p.reject(it, ingest.ReasonSignatureMissing, "event has no signature", f.Data, ev.EventID)
			return
		case ev.Signature != "":
			// Verify signs absent data as null, as the service does.
			verify := p.cfg.Verifier.Verify
			if canonical {
				verify = p.cfg.Verifier.VerifyCanonical
			}
			if err := verify(ev.Data, ev.Signature); err != nil {
				p.reject(it, ingest.ReasonSignatureInvalid, err.Error(), f.Data, ev.EventID)
				return
			}
			verified = true
		}
	}

	if ev.EventID == "" {
		p.obs.NoEventID()
	} else {
		it.fp = fingerprintOf(ev.EventID)
		if p.dd.seenOrClaim(it.fp, now.UnixNano()) {
			p.obs.Duplicate()
			it.kind = kindDrop
			// A repeat stands for an older position: it must not move the
			// checkpoint back.
			it.cursor = ""
			return
		}
		it.hasFP = true
	}

	if ts := ev.Meta.Timestamp; ts != "" {
		if t, ok := parseTimestamp(ts); ok {
			p.obs.EventLag(now.Sub(t))
		}
	}

	it.kind = kindPublish
	r := &it.rec
	r.Dest = p.cfg.Destination
	r.Value = f.Data
	r.JSONValue = true // DecodeEvent validated all of it
	h := p.headers(headersPerRecord)
	h = append(h, ingest.Header{Key: ingest.HeaderStream, Value: p.cfg.Name})
	if ev.EventID != "" {
		h = append(h, ingest.Header{Key: ingest.HeaderEventID, Value: ev.EventID})
		r.MsgID = p.cfg.Name + ":" + ev.EventID
	}
	h = append(h, ingest.Header{Key: ingest.HeaderEventType, Value: ev.Type})
	if ev.Meta.Timestamp != "" {
		h = append(h, ingest.Header{Key: ingest.HeaderTimestamp, Value: ev.Meta.Timestamp})
	}
	v := "false"
	if verified {
		v = "true"
	}
	h = append(h, ingest.Header{Key: ingest.HeaderVerified, Value: v},
		ingest.Header{Key: ingest.HeaderContentType, Value: ingest.ContentTypeJSON})
	r.Headers = h
	switch p.cfg.KeyMode {
	case KeyStream:
		r.Key = p.key
	case KeyEventID:
		if ev.EventID != "" {
			r.Key = []byte(ev.EventID)
		} else {
			r.Key = p.key
		}
	}
}

func (p *processor) tooLargeError(n int, cut bool) string {
	limit := strconv.Itoa(p.cfg.MaxEventBytes)
	if cut {
		return "event is larger than max_event_bytes (" + limit + "); the first " + limit + " bytes are kept"
	}
	return "event of " + strconv.Itoa(n) + " bytes is larger than max_event_bytes (" + limit + ")"
}

// reject makes *it a dead-letter record, or a drop when there is no
// dead-letter destination.
func (p *processor) reject(it *item, reason, msg string, data []byte, eventID string) {
	dlq := p.deadLetter != ""
	p.obs.Rejected(Rejection{Reason: reason, Err: msg, EventID: eventID, DeadLettered: dlq})
	if !dlq {
		it.kind = kindDrop
		return
	}
	it.kind = kindDeadLetter
	h := p.headers(4)
	h = append(h, ingest.Header{Key: ingest.HeaderStream, Value: p.cfg.Name})
	if eventID != "" {
		h = append(h, ingest.Header{Key: ingest.HeaderEventID, Value: eventID})
	}
	h = append(h, ingest.Header{Key: ingest.HeaderDLQReason, Value: reason},
		ingest.Header{Key: ingest.HeaderDLQError, Value: msg})
	it.rec = ingest.Record{Dest: p.deadLetter, Key: p.key, Headers: h, Value: data}
}
