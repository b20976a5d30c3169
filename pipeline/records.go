package pipeline

import (
	"github.com/restless-stream/ingest"
	"github.com/restless-stream/ingest/client"
)

// Header names of the records a lane builds (INGEST.md, "What lands in the
// broker"). Sinks carry headers without reading them; the record's MsgID is
// what a broker's duplicate detection uses.
const (
	HeaderStream      = "restless-stream"
	HeaderEventID     = "restless-event-id"
	HeaderEventType   = "restless-event-type"
	HeaderTimestamp   = "restless-timestamp"
	HeaderVerified    = "restless-verified"
	HeaderContentType = "content-type"
	// HeaderMaterialized ("true") marks a record carrying a stream's
	// materialised document (StreamConfig.Materialize).
	HeaderMaterialized = "restless-materialized"

	// Dead-letter records carry these instead of type, timestamp and verified.
	HeaderDLQReason = "restless-dlq-reason"
	HeaderDLQError  = "restless-dlq-error"

	ContentTypeJSON = "application/json"
)

// Reasons an event is rejected ([Rejection.Reason]); the first four are
// also the restless-dlq-reason of its dead-letter record.
const (
	ReasonParseError       = "parse_error"
	ReasonTooLarge         = "too_large"
	ReasonSignatureMissing = "signature_missing"
	ReasonSignatureInvalid = "signature_invalid"

	// ReasonPublishRejected counts a record the broker refused for good (the
	// sink returned an ingest.PermanentError for it, e.g. a record larger
	// than the broker accepts). It is counted and dropped rather than
	// retried forever, which would stall its stream; it is not
	// dead-lettered, since the broker would refuse the same bytes there too.
	ReasonPublishRejected = "publish_rejected"

	// ReasonPatchFailed counts an event of a materialised stream whose
	// patch did not apply, or came with no document to apply it to
	// (client.ErrPatchFailed). The event itself is published; a copy goes
	// to the dead-letter destination with this reason.
	ReasonPatchFailed = "patch_failed"
)

// headerSlabSize is how many records' headers share one allocation.
const headerSlabSize = 128

const headersPerRecord = 6

// headers returns an empty slice with room for n headers, cut from the
// processor's slab.
func (p *processor) headers(n int) []ingest.Header {
	if len(p.slab) < n {
		p.slab = make([]ingest.Header, headersPerRecord*headerSlabSize)
	}
	h := p.slab[:0:n] // full slice expression: an append by a sink copies
	p.slab = p.slab[n:]
	return h
}

// publish makes *it the record of accepted event ev, read from data: the
// bytes unchanged (no copy), to the stream's destination, keyed per its
// KeyMode.
func (p *processor) publish(it *item, ev *client.Event, data []byte, verified bool) {
	it.kind = kindPublish
	r := &it.rec
	r.Dest = p.cfg.Destination
	r.Value = data
	r.JSONValue = true // DecodeEvent validated all of it
	h := p.headers(headersPerRecord)
	h = append(h, ingest.Header{Key: HeaderStream, Value: p.cfg.Name})
	if ev.EventID != "" {
		h = append(h, ingest.Header{Key: HeaderEventID, Value: ev.EventID})
		r.MsgID = p.cfg.Name + ":" + ev.EventID
	}
	h = append(h, ingest.Header{Key: HeaderEventType, Value: ev.Type})
	if ev.Meta.Timestamp != "" {
		h = append(h, ingest.Header{Key: HeaderTimestamp, Value: ev.Meta.Timestamp})
	}
	v := "false"
	if verified {
		v = "true"
	}
	h = append(h, ingest.Header{Key: HeaderVerified, Value: v},
		ingest.Header{Key: HeaderContentType, Value: ContentTypeJSON})
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

// materialize applies accepted event ev to the stream's document. When the
// document changed, a record of the whole document is queued before the
// event's item (so that the checkpoint, which moves with the event, never
// passes an unpublished document); when a patch failed, a dead-letter copy
// of the event is queued instead, and the document stays unset until a full
// one comes. The event's record evRec is published either way.
func (p *processor) materialize(ev *client.Event, evRec *ingest.Record, data []byte) {
	changed, err := p.doc.Apply(ev)
	if err != nil {
		// Apply unset the document; anything but a failed patch (a full
		// document over the size limit) is rejected the same way: no
		// document can be published until the next full one.
		p.doc.Reset()
		dlq := p.deadLetter != ""
		p.obs.Rejected(Rejection{Reason: ReasonPatchFailed, Err: err.Error(), EventID: ev.EventID, DeadLettered: dlq})
		if !dlq {
			return
		}
		it := getItem()
		it.kind = kindDeadLetter
		h := p.headers(4)
		h = append(h, ingest.Header{Key: HeaderStream, Value: p.cfg.Name})
		if ev.EventID != "" {
			h = append(h, ingest.Header{Key: HeaderEventID, Value: ev.EventID})
		}
		h = append(h, ingest.Header{Key: HeaderDLQReason, Value: ReasonPatchFailed},
			ingest.Header{Key: HeaderDLQError, Value: err.Error()})
		it.rec = ingest.Record{Dest: p.deadLetter, Key: p.key, Headers: h, Value: data}
		p.pre = append(p.pre, it)
		return
	}
	if !changed {
		return
	}
	it := getItem()
	it.kind = kindDocument
	h := p.headers(len(evRec.Headers) + 1)
	h = append(h, evRec.Headers...)
	h = append(h, ingest.Header{Key: HeaderMaterialized, Value: "true"})
	it.rec = ingest.Record{Dest: p.cfg.Materialize, Key: p.key, Headers: h, Value: p.doc.Bytes(), JSONValue: true}
	if evRec.MsgID != "" {
		it.rec.MsgID = evRec.MsgID + ":materialized"
	}
	p.pre = append(p.pre, it)
}

// reject makes *it a dead-letter record, or a drop when there is no
// dead-letter destination.
func (p *processor) reject(it *item, reason, msg string, data []byte, eventID string) {
	dlq := p.deadLetter != ""
	p.obs.Rejected(Rejection{Reason: reason, Err: msg, EventID: eventID, DeadLettered: dlq})
	if p.doc != nil {
		// What the rejected event would have done to the document is
		// unknown: the next patch could apply to the wrong document.
		p.doc.Reset()
	}
	if !dlq {
		it.kind = kindDrop
		return
	}
	it.kind = kindDeadLetter
	h := p.headers(4)
	h = append(h, ingest.Header{Key: HeaderStream, Value: p.cfg.Name})
	if eventID != "" {
		h = append(h, ingest.Header{Key: HeaderEventID, Value: eventID})
	}
	h = append(h, ingest.Header{Key: HeaderDLQReason, Value: reason},
		ingest.Header{Key: HeaderDLQError, Value: msg})
	it.rec = ingest.Record{Dest: p.deadLetter, Key: p.key, Headers: h, Value: data}
}
