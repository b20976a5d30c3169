package client

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	jsonpatch "github.com/evanphx/json-patch/v5"
)

// ErrPatchFailed matches (errors.Is) the error of Document.Apply when an
// event's patch cannot give a document: there is no document to apply it to,
// the patch is not a valid RFC 6902 patch, one of its operations does not
// apply (a "test" that does not match, a path that does not exist), or the
// result would be larger than the document's limit. The document is then
// unset until the next event carrying a full document.
var ErrPatchFailed = errors.New("restless: patch failed")

// Document is the current document of a JSON_PATCH stream (PROTOCOL.md §3),
// materialised from its events: an update event whose data is a JSON array
// is an RFC 6902 patch to the current document; any other data, and any
// event whose meta.payload_mode_fallback is non-null, is a full document that
// replaces it. The first event after a (re)connect carries the full document.
//
// A patch that fails leaves the document unset (Valid reports false, Bytes
// returns nil) until the next full document: a wrong document is never
// shown. Error events leave the document as it is.
//
// A Document is not safe for concurrent use. Its zero value is not usable;
// create one with NewDocument.
type Document struct {
	doc      []byte // nil when unset; never modified in place
	maxBytes int
	opts     *jsonpatch.ApplyOptions
}

// DocumentOption configures NewDocument.
type DocumentOption func(*Document)

// WithMaxDocumentBytes bounds the document to n bytes (as JSON): a full
// document, or the result of a patch, larger than that is refused and
// leaves the document unset. The default is DefaultMaxEventBytes, the
// default bound on one event; a document of a stream read with
// WithMaxEventBytes(m) may need m. n ≤ 0 keeps the default.
func WithMaxDocumentBytes(n int) DocumentOption {
	return func(d *Document) {
		if n > 0 {
			d.maxBytes = n
		}
	}
}

// NewDocument returns an unset Document.
func NewDocument(opts ...DocumentOption) *Document {
	d := &Document{maxBytes: DefaultMaxEventBytes}
	for _, o := range opts {
		o(d)
	}
	d.opts = patchOptions(d.maxBytes)
	return d
}

// patchOptions are the options every patch is applied with: RFC 6902 as
// written (no negative array indices, a remove of a missing path fails, an
// add does not create missing parents), "<", ">" and "&" kept as they are,
// and the growth a patch's copy operations can cause bounded by max.
func patchOptions(max int) *jsonpatch.ApplyOptions {
	o := jsonpatch.NewApplyOptions()
	o.SupportNegativeIndices = false
	o.AllowMissingPathOnRemove = false
	o.EnsurePathExistsOnAdd = false
	o.EscapeHTML = false
	o.AccumulatedCopySizeLimit = int64(max)
	return o
}

// applyPatch applies the RFC 6902 patch to doc with opts; it returns a new
// slice and never modifies doc.
func applyPatch(doc, patch []byte, opts *jsonpatch.ApplyOptions) ([]byte, error) {
	p, err := jsonpatch.DecodePatch(patch)
	if err != nil {
		return nil, err
	}
	// The library reads a missing "value" as null; RFC 6902 §4 requires it.
	for i, op := range p {
		switch op.Kind() {
		case "add", "replace", "test":
			if _, ok := op["value"]; !ok {
				return nil, fmt.Errorf("operation %d (%s): no \"value\"", i, op.Kind())
			}
		}
	}
	return p.ApplyWithOptions(doc, opts)
}

// Apply applies ev to the document. changed reports whether ev set the
// document (a full document, or a patch that applied, even one that changed
// nothing); an error event leaves it unchanged and returns false, nil.
//
// An update event whose data is a JSON array (and whose
// meta.payload_mode_fallback is absent or null) is a patch: when it fails,
// Apply returns an error matching ErrPatchFailed and the document is unset
// until the next full document. Any other update event replaces the
// document with a copy of its data (null when it has none); a document over
// the size limit, or data that is not JSON, is an error (not ErrPatchFailed)
// that also leaves the document unset.
func (d *Document) Apply(ev *Event) (changed bool, err error) {
	if ev == nil {
		return false, errors.New("restless: document: nil event")
	}
	if ev.Type == EventError {
		return false, nil
	}
	if isPatch(ev) {
		if d.doc == nil {
			return false, fmt.Errorf("%w: event %q: a patch with no document to apply it to", ErrPatchFailed, ev.EventID)
		}
		out, err := applyPatch(d.doc, ev.Data, d.opts)
		if err != nil {
			d.doc = nil
			return false, fmt.Errorf("%w: event %q: %v", ErrPatchFailed, ev.EventID, err)
		}
		if len(out) > d.maxBytes {
			d.doc = nil
			return false, fmt.Errorf("%w: event %q: the patched document would be %d bytes, over the limit of %d", ErrPatchFailed, ev.EventID, len(out), d.maxBytes)
		}
		d.doc = out
		return true, nil
	}
	data := []byte(ev.Data)
	if len(data) == 0 {
		data = []byte("null")
	}
	if err := d.set(data); err != nil {
		return false, fmt.Errorf("restless: document: event %q: %w", ev.EventID, err)
	}
	return true, nil
}

// isPatch reports whether ev's data is a patch: a JSON array, in an event
// that is not a full-data fallback.
func isPatch(ev *Event) bool {
	if len(ev.Meta.PayloadModeFallback) > 0 && string(ev.Meta.PayloadModeFallback) != "null" {
		return false
	}
	b := bytes.TrimLeft(ev.Data, " \t\r\n")
	return len(b) > 0 && b[0] == '['
}

// Restore sets the document to doc (a copy), as saved earlier from Bytes;
// nil or empty unsets it. doc must be one JSON value within the size
// limit, else the document is unset and an error returned.
func (d *Document) Restore(doc []byte) error {
	if len(doc) == 0 {
		d.doc = nil
		return nil
	}
	if err := d.set(doc); err != nil {
		return fmt.Errorf("restless: document: %w", err)
	}
	return nil
}

func (d *Document) set(doc []byte) error {
	if len(doc) > d.maxBytes {
		d.doc = nil
		return fmt.Errorf("the document is %d bytes, over the limit of %d", len(doc), d.maxBytes)
	}
	if !json.Valid(doc) {
		d.doc = nil
		return errors.New("the document is not valid JSON")
	}
	d.doc = bytes.Clone(doc)
	return nil
}

// Reset unsets the document.
func (d *Document) Reset() { d.doc = nil }

// Valid reports whether the document is set.
func (d *Document) Valid() bool { return d.doc != nil }

// Bytes returns the document as JSON, nil while it is unset. The slice is
// never modified by the Document (Apply replaces it), so it may be kept,
// but it must not be modified.
func (d *Document) Bytes() []byte { return d.doc }

// Value returns the document decoded (map[string]any, []any, json.Number,
// string, bool or nil); an error matching ErrPatchFailed while the document
// is unset.
func (d *Document) Value() (any, error) {
	if d.doc == nil {
		return nil, fmt.Errorf("%w: no document", ErrPatchFailed)
	}
	dec := json.NewDecoder(bytes.NewReader(d.doc))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("restless: document: %w", err)
	}
	return v, nil
}
