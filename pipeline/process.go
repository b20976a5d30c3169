package pipeline

import (
	"strconv"
	"time"

	"github.com/restless-stream/ingest"
	"github.com/restless-stream/ingest/client"
	"github.com/restless-stream/ingest/pipeline/internal/dedupe"
)

// processor turns frames into items. It belongs to one lane's reader
// goroutine; only its dedupe filter is shared (with the lane's writer).
type processor struct {
	cfg        StreamConfig
	deadLetter string
	key        []byte // the stream name, shared by every record keyed by it
	obs        StreamObserver
	dd         *dedupe.Filter
	now        func() time.Time

	ev   client.Event    // reused for every frame
	slab []ingest.Header // headers are cut from here
	// canonSkip counts down the events decoded without trying
	// DecodeEventCanonical after it said no.
	canonSkip int

	// doc is the stream's materialised document; nil unless the stream
	// has a Materialize destination.
	doc *client.Document
	// pre are items process made besides its own (a document, a dead-letter
	// copy), to be sent before it; the reader empties it.
	pre []*item
}

// canonRetry is how many events a lane decodes the plain way after one whose
// data was not canonical.
const canonRetry = 64

func newProcessor(cfg StreamConfig, deadLetter string, obs StreamObserver, dd *dedupe.Filter) *processor {
	p := &processor{cfg: cfg, deadLetter: deadLetter, key: []byte(cfg.Name), obs: obs, dd: dd, now: time.Now}
	if cfg.Materialize != "" {
		p.doc = client.NewDocument(client.WithMaxDocumentBytes(cfg.MaxEventBytes))
	}
	return p
}

// process turns frame f into *it. f.Data becomes the record's value without
// a copy.
func (p *processor) process(f ingest.Frame, it *item) {
	p.obs.Received()
	now := p.now()
	*it = item{received: f.Received}
	if it.received.IsZero() {
		it.received = now
	}
	eventID, duplicate := p.handle(f, it, now)
	it.cursor = cursorOf(eventID, f.Cursor, duplicate)
	if p.doc != nil && it.cursor != "" {
		it.hasDoc, it.doc = true, p.doc.Bytes()
	}
}

// handle decides what becomes of f: a record to publish, a rejection or a
// duplicate. It returns the event_id it could read ("" when none) and
// whether the event is a duplicate.
func (p *processor) handle(f ingest.Frame, it *item, now time.Time) (eventID string, duplicate bool) {
	if f.TooLarge || len(f.Data) > p.cfg.MaxEventBytes {
		data := f.Data
		if len(data) > p.cfg.MaxEventBytes {
			data = data[:p.cfg.MaxEventBytes]
		}
		id, _ := client.EventIDOf(data)
		p.reject(it, ReasonTooLarge, p.tooLargeError(len(f.Data), f.TooLarge), data, id)
		return id, false
	}
	if f.Err != nil { // the source refused the event (an SSE id that cannot be a cursor)
		p.reject(it, ReasonParseError, f.Err.Error(), f.Data, "")
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
			p.reject(it, ReasonParseError, err.Error(), f.Data, id)
			return id, false
		}
	}

	verified := false
	if p.cfg.VerifyMode != VerifyOff && (ev.Type == client.EventUpdate || ev.Data != nil) {
		// An error event with no data (its error object and meta only) is
		// never signed: it passes unverified whatever the mode (PROTOCOL.md
		// §4). One that carries data is verified like an update, so that
		// nothing unverified carries data into the destination in require
		// mode.
		switch {
		case ev.Signature == "" && p.cfg.VerifyMode == VerifyRequire:
			msg := "event has no signature"
			if ev.Type == client.EventError {
				msg = "error event carries data but no signature"
			}
			p.reject(it, ReasonSignatureMissing, msg, f.Data, ev.EventID)
			return ev.EventID, false
		case ev.Signature != "":
			// Verify signs absent data as null, as the service does.
			verify := p.cfg.Verifier.Verify
			if canonical {
				verify = p.cfg.Verifier.VerifyCanonical
			}
			if err := verify(ev.Data, ev.Signature); err != nil {
				p.reject(it, ReasonSignatureInvalid, err.Error(), f.Data, ev.EventID)
				return ev.EventID, false
			}
			verified = true
		}
	}

	if ev.EventID == "" {
		p.obs.NoEventID()
	} else {
		it.fp = dedupe.Of(ev.EventID)
		if p.dd.SeenOrClaim(it.fp, now.UnixNano()) {
			p.obs.Duplicate()
			it.kind = kindDrop
			return ev.EventID, true
		}
		it.hasFP = true
	}

	if ts := ev.Meta.Timestamp; ts != "" {
		if t, ok := parseTimestamp(ts); ok {
			p.obs.EventLag(now.Sub(t))
		}
	}
	p.publish(it, ev, f.Data, verified)
	if p.doc != nil {
		p.materialize(ev, &it.rec, f.Data)
	}
	return ev.EventID, false
}

func (p *processor) tooLargeError(n int, cut bool) string {
	limit := strconv.Itoa(p.cfg.MaxEventBytes)
	if cut {
		return "event is larger than max_event_bytes (" + limit + "); the first " + limit + " bytes are kept"
	}
	return "event of " + strconv.Itoa(n) + " bytes is larger than max_event_bytes (" + limit + ")"
}
