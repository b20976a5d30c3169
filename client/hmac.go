package client

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"strings"
	"sync"
)

// Verification outcomes (PROTOCOL.md §4). Verify's errors match one of them
// with errors.Is.
var (
	// ErrSignatureMissing: the event has no signature (absent, null or "").
	ErrSignatureMissing = errors.New("restless: signature missing")
	// ErrSignatureInvalid: the signature matches no secret, cannot be decoded,
	// or the signed data cannot be canonicalised.
	ErrSignatureInvalid = errors.New("restless: signature invalid")

	errSignatureUndecodable = fmt.Errorf("%w: not 64 hex digits or base64 of 32 bytes", ErrSignatureInvalid)
)

// nullJSON is what an absent payload is signed as (Python's json.dumps(None)).
var nullJSON = []byte("null")

// ComputeSignature returns the lowercase hex HMAC-SHA256 of the canonical
// JSON of payload under secret. payload is marshalled with encoding/json
// without HTML escaping, then canonicalised: json.Number and
// json.RawMessage keep their digits, but a float64 is written as Go writes
// it (42.0 as 42, where Python writes 42.0). Use ComputeSignatureRaw to sign
// JSON exactly as received.
func ComputeSignature(secret string, payload any) (string, error) {
	raw, err := marshalPayload(payload)
	if err != nil {
		return "", err
	}
	return ComputeSignatureRaw(secret, raw)
}

// ComputeSignatureRaw returns the lowercase hex HMAC-SHA256 of the canonical
// form of the JSON document rawJSON (empty means null) under secret.
func ComputeSignatureRaw(secret string, rawJSON []byte) (string, error) {
	if len(rawJSON) == 0 {
		rawJSON = nullJSON
	}
	msg, err := Canonical(nil, rawJSON)
	if err != nil {
		return "", err
	}
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(msg)
	return hex.EncodeToString(m.Sum(nil)), nil
}

// VerifySignature reports whether signature (hex in either case, standard
// base64, optionally prefixed "sha256=") is the HMAC-SHA256 of the canonical
// JSON of payload under secret. The comparison is constant-time.
func VerifySignature(secret string, payload any, signature string) bool {
	raw, err := marshalPayload(payload)
	if err != nil {
		return false
	}
	v, err := NewVerifier([]string{secret})
	if err != nil {
		return false // no secret: nothing can match
	}
	return v.Verify(raw, signature) == nil
}

func marshalPayload(payload any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(payload); err != nil {
		return nil, fmt.Errorf("restless: marshal signed payload: %w", err)
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// Verifier checks event signatures against one or more secrets (several
// during a rotation). It is safe for concurrent use; its hash states and
// buffers are pooled, so verifying canonical data allocates nothing.
type Verifier struct {
	macs  []*sync.Pool  // of *macState, one pool per secret
	canon Canonicalizer // nil: Canonical, with the IsCanonical shortcut
	bufs  sync.Pool     // of *[]byte, for canonicalised data
}

type macState struct {
	h   hash.Hash
	sum [sha256.Size]byte
}

// VerifierOption configures a Verifier.
type VerifierOption func(*Verifier)

// WithCanonicalizer makes the Verifier sign the form c produces instead of
// Canonical's (and drops the IsCanonical shortcut, which only holds for
// Canonical).
func WithCanonicalizer(c Canonicalizer) VerifierOption {
	return func(v *Verifier) { v.canon = c }
}

// NewVerifier returns a Verifier for secrets. Empty strings are skipped; at
// least one non-empty secret is required.
func NewVerifier(secrets []string, opts ...VerifierOption) (*Verifier, error) {
	v := &Verifier{}
	for _, s := range secrets {
		if s == "" {
			continue
		}
		key := []byte(s)
		v.macs = append(v.macs, &sync.Pool{New: func() any {
			return &macState{h: hmac.New(sha256.New, key)}
		}})
	}
	if len(v.macs) == 0 {
		return nil, errors.New("restless: verifier needs at least one non-empty secret")
	}
	for _, o := range opts {
		o(v)
	}
	v.bufs.New = func() any { return new([]byte) }
	return v, nil
}

// Verify checks signature over rawData, the raw JSON of the event's data
// (empty means null). It returns nil when any secret matches; an error
// matching ErrSignatureMissing when signature is ""; otherwise an error
// matching ErrSignatureInvalid (also when the signature is neither hex nor
// base64, or rawData is not valid JSON, or has a key twice in an object:
// verified data has one reading). It accepts lowercase and uppercase
// hex, standard (and URL-safe) base64, and a "sha256=" prefix. Data already
// in canonical form is signed as is, without re-serialising.
func (v *Verifier) Verify(rawData []byte, signature string) error {
	return v.verify(rawData, signature, false)
}

// VerifyCanonical is Verify for data known to be in canonical form (absent,
// or reported so by IsCanonical or DecodeEventCanonical): it does not check
// again. Data that is not canonical fails, unless it is the very bytes that
// were signed. With a Verifier made WithCanonicalizer it is Verify.
func (v *Verifier) VerifyCanonical(rawData []byte, signature string) error {
	return v.verify(rawData, signature, true)
}

func (v *Verifier) verify(rawData []byte, signature string, canonical bool) error {
	if signature == "" {
		return ErrSignatureMissing
	}
	var want [sha256.Size]byte
	if !decodeSignature(signature, &want) {
		return errSignatureUndecodable
	}
	if len(rawData) == 0 {
		rawData = nullJSON
	}
	msg := rawData
	if v.canon != nil || (!canonical && !IsCanonical(rawData)) {
		canon := v.canon
		if canon == nil {
			canon = canonicalStrict
		}
		bp := v.bufs.Get().(*[]byte)
		defer v.putBuf(bp)
		out, err := canon((*bp)[:0], rawData)
		*bp = out
		if err != nil {
			return fmt.Errorf("%w: data: %w", ErrSignatureInvalid, err)
		}
		msg = out
	}
	for _, p := range v.macs {
		st := p.Get().(*macState)
		st.h.Reset()
		st.h.Write(msg)
		ok := hmac.Equal(st.h.Sum(st.sum[:0]), want[:])
		p.Put(st)
		if ok {
			return nil
		}
	}
	return ErrSignatureInvalid
}

func (v *Verifier) putBuf(bp *[]byte) {
	if cap(*bp) <= 1<<20 {
		v.bufs.Put(bp)
	}
}

// hexTable maps a hex digit to its value and every other byte to 0xff.
var hexTable = func() (t [256]byte) {
	for c := range t {
		t[c] = 0xff
		if v := hexVal(byte(c)); v >= 0 {
			t[c] = byte(v)
		}
	}
	return t
}()

// decodeSignature decodes a 32-byte MAC written as hex (either case) or
// base64 (standard or URL-safe alphabet, padded or not), after an optional
// "sha256=" prefix. It does not allocate.
func decodeSignature(s string, out *[sha256.Size]byte) bool {
	if len(s) > 7 && strings.EqualFold(s[:7], "sha256=") {
		s = s[7:]
	}
	switch len(s) {
	case 2 * sha256.Size:
		// A table, not hexVal: hex digits alternate unpredictably between
		// digits and letters, and each mispredicted branch costs more than
		// the lookup.
		bad := byte(0)
		for i := range out {
			h, l := hexTable[s[2*i]], hexTable[s[2*i+1]]
			bad |= h | l
			out[i] = h<<4 | l&0x0f
		}
		return bad&0x80 == 0
	case 44, 43: // padded or unpadded base64 of 32 bytes
		if len(s) == 44 {
			if s[43] != '=' {
				return false
			}
			s = s[:43]
		}
		var acc uint32
		bits, n := 0, 0
		for i := 0; i < len(s); i++ {
			d := b64Val(s[i])
			if d < 0 {
				return false
			}
			acc = acc<<6 | uint32(d)
			bits += 6
			if bits >= 8 {
				bits -= 8
				out[n] = byte(acc >> bits)
				n++
			}
		}
		return acc&(1<<bits-1) == 0 // the 2 leftover bits must be zero
	}
	return false
}

func b64Val(c byte) int {
	switch {
	case 'A' <= c && c <= 'Z':
		return int(c - 'A')
	case 'a' <= c && c <= 'z':
		return int(c-'a') + 26
	case '0' <= c && c <= '9':
		return int(c-'0') + 52
	case c == '+' || c == '-':
		return 62
	case c == '/' || c == '_':
		return 63
	}
	return -1
}
