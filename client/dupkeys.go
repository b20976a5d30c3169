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
	keys      [32]keySpan
	bases     [16]int32 // where each open object's keys start
	moreKeys  []keySpan // keys beyond len(keys)
	moreBases []int32   // bases beyond len(bases)
}

// (No slice of keySet points into its own arrays: that would make every
// decoder escape to the heap.)

type keySpan struct {
	start, end int32 // the key's bytes between the quotes
	// tag sums the key up for a first comparison: its length (up to
	// 0x7fff), escBit when it has escapes, its first and last bytes.
	tag uint32
}

const escBit = 1 << 15

func keyTag(key []byte, esc bool) uint32 {
	if esc {
		return escBit
	}
	if len(key) == 0 {
		return 0
	}
	return uint32(min(len(key), 0x7fff)) | uint32(key[0])<<16 | uint32(key[len(key)-1])<<24
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
	key := b[start:end]
	tag := keyTag(key, esc)
	if k.n-base < linearKeys {
		if k.n <= len(k.keys) {
			for _, o := range k.keys[base:k.n] {
				if o.tag == tag && tag&escBit == 0 {
					if bytes.Equal(b[o.start:o.end], key) {
						return int(o.start)
					}
				} else if (o.tag|tag)&escBit != 0 && compareKeys(b[o.start:o.end], o.tag&escBit != 0, key, esc) == 0 {
					return int(o.start)
				}
			}
		} else {
			for i := base; i < k.n; i++ {
				o := k.key(i)
				if (o.tag == tag || (o.tag|tag)&escBit != 0) && compareKeys(b[o.start:o.end], o.tag&escBit != 0, key, esc) == 0 {
					return int(o.start)
				}
			}
		}
	}
	s := keySpan{start: int32(start), end: int32(end), tag: tag}
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
	cmp := func(x, y keySpan) int {
		return compareKeys(b[x.start:x.end], x.tag&escBit != 0, b[y.start:y.end], y.tag&escBit != 0)
	}
	slices.SortFunc(open, cmp)
	for i := 1; i < len(open); i++ {
		if cmp(open[i-1], open[i]) == 0 {
			return int(max(open[i-1].start, open[i].start))
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
