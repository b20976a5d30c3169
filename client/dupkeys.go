package client

import (
	"bytes"
	"slices"
	"strconv"
)

// keySet finds duplicate keys in the objects a scan has open: the keys of
// each open object, innermost last. Keys are compared by their decoded
// text, so "sign\u0061ture" duplicates "signature". It lives inside the
// decoder on the stack; a document with more keys open at once than its
// arrays hold, or an object of more than linearKeys keys, makes it
// allocate.
type keySet struct {
	n, nb     int // keys and bases in use
	keys      [64]keySpan
	bases     [16]int32 // where each open object's keys start
	moreKeys  []keySpan // keys beyond len(keys)
	moreBases []int32   // bases beyond len(bases)
}

// (No slice of keySet points into its own arrays: that would make every
// decoder escape to the heap.)

type keySpan struct {
	start, end int32 // the key's bytes between the quotes
	esc        bool
}

// linearKeys is how many keys an object is checked for one by one as they
// come; the keys of a larger object are sorted and checked when it closes.
const linearKeys = 16

func (k *keySet) key(i int) keySpan {
	if i < len(k.keys) {
		return k.keys[i]
	}
	return k.moreKeys[i-len(k.keys)]
}

// push opens an object.
func (k *keySet) push() {
	if k.nb < len(k.bases) {
		k.bases[k.nb] = int32(k.n)
	} else {
		k.moreBases = append(k.moreBases[:k.nb-len(k.bases)], int32(k.n))
	}
	k.nb++
}

func (k *keySet) base() int {
	if i := k.nb - 1; i < len(k.bases) {
		return int(k.bases[i])
	}
	return int(k.moreBases[k.nb-1-len(k.bases)])
}

// add records the key b[start:end] of the innermost open object. It returns
// the index of an earlier equal key, or -1.
func (k *keySet) add(b []byte, start, end int, esc bool) int {
	base := k.base()
	if k.n-base < linearKeys {
		key := b[start:end]
		for i := base; i < k.n; i++ {
			o := k.key(i)
			if !esc && !o.esc {
				if int(o.end-o.start) == len(key) && bytes.Equal(b[o.start:o.end], key) {
					return int(o.start)
				}
				continue
			}
			if compareKeys(b[o.start:o.end], o.esc, key, esc) == 0 {
				return int(o.start)
			}
		}
	}
	s := keySpan{start: int32(start), end: int32(end), esc: esc}
	if k.n < len(k.keys) {
		k.keys[k.n] = s
	} else {
		k.moreKeys = append(k.moreKeys[:k.n-len(k.keys)], s)
	}
	k.n++
	return -1
}

// pop closes the innermost object. For an object too large to have been
// checked key by key, it returns the index of a duplicate key, or -1.
func (k *keySet) pop(b []byte) int {
	base := k.base()
	k.nb--
	n := k.n
	k.n = base
	if n-base <= linearKeys {
		return -1
	}
	open := make([]keySpan, 0, n-base)
	for i := base; i < n; i++ {
		open = append(open, k.key(i))
	}
	slices.SortFunc(open, func(x, y keySpan) int {
		return compareKeys(b[x.start:x.end], x.esc, b[y.start:y.end], y.esc)
	})
	for i := 1; i < len(open); i++ {
		x, y := open[i-1], open[i]
		if compareKeys(b[x.start:x.end], x.esc, b[y.start:y.end], y.esc) == 0 {
			return int(max(x.start, y.start))
		}
	}
	return -1
}

// dupErr is the error for a duplicate key, its text at b[at:] (the byte
// after the opening quote).
func dupErr(b []byte, at int) *ParseError {
	end := stringEnd(b, at-1)
	key := b[at : end-1]
	return &ParseError{Offset: at - 1, Reason: "duplicate key " + quoteKey(appendUnescaped(nil, key))}
}

// quoteKey quotes a decoded key for a message, cut at 64 bytes.
func quoteKey(k []byte) string {
	if len(k) > 64 {
		return strconv.Quote(string(k[:64])) + "…"
	}
	return strconv.Quote(string(k))
}
