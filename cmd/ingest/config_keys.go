package main

import (
	"errors"
	"reflect"
	"strings"

	"github.com/restless-stream/ingest"
)

// The libraries validate their own Configs and name each field at fault by
// its Go path inside that Config (*ingest.FieldError: "Streams[2].Name",
// "Brokers[1]"). The daemon reports problems by YAML key. libraryErrors
// translates in two steps: a fieldMap moves each Go path from the library's
// Config to where the same setting sits in the daemon's Config, and keyOf
// spells that Go path with the koanf tags of Config's fields.

// fieldRule moves the Go paths under From (a path inside a library's
// Config, "" for all of them) to To (a path inside Config). "[]" stands for
// any index; To's "[]" take From's indexes in order, and a To without them
// drops them (one YAML key set for every stream). To "-" marks a field the
// daemon sets itself rather than reads from the configuration: its errors
// are not the user's to fix and are left out.
type fieldRule struct{ From, To string }

// fieldMap is where the fields of one library Config sit in Config. The
// rule with the longest matching From applies.
type fieldMap []fieldRule

// notConfigured is the To of a field that the daemon sets itself.
const notConfigured = "-"

// libraryErrors turns err, as a library Config's Validate returns it
// (joins of *ingest.FieldError, at any depth), into FieldErrors at YAML keys, in
// order, each reported once. Errors that are not FieldErrors are kept, at
// the key of the whole library Config (the rule for "").
func libraryErrors(err error, m fieldMap) []FieldError {
	var out []FieldError
	for _, e := range ingest.Split(err) {
		var fe *ingest.FieldError
		goPath, msg := "", e.Error()
		if errors.As(e, &fe) {
			goPath, msg = fe.Field, fe.Err.Error()
		}
		to, ok := m.move(goPath)
		if !ok {
			continue
		}
		out = append(out, FieldError{Path: orRoot(keyOf(to)), Msg: msg})
	}
	return unique(out)
}

// move returns where goPath, a path inside a library's Config, sits in
// Config, and false for a field the daemon sets itself.
func (m fieldMap) move(goPath string) (string, bool) {
	shape, idx := indexShape(goPath)
	best := -1
	for i, r := range m {
		if under(shape, r.From) && (best < 0 || len(r.From) > len(m[best].From)) {
			best = i
		}
	}
	if best < 0 {
		return goPath, true
	}
	r := m[best]
	if r.To == notConfigured {
		return "", false
	}
	n := strings.Count(r.From, "[]")
	to := fillIndexes(r.To, idx[:n])
	rest := fillIndexes(strings.TrimPrefix(shape, r.From), idx[n:])
	return joinGoPath(to, rest), true
}

// fillIndexes puts idx, in order, in the first "[]" of p.
func fillIndexes(p string, idx []string) string {
	for _, i := range idx {
		p = strings.Replace(p, "[]", "["+i+"]", 1)
	}
	return p
}

// joinGoPath joins two parts of a Go path.
func joinGoPath(a, b string) string {
	b = strings.TrimPrefix(b, ".")
	switch {
	case a == "":
		return b
	case b == "":
		return a
	case b[0] == '[':
		return a + b
	}
	return a + "." + b
}

// under reports whether path (indexes as "[]") is from or below it.
func under(path, from string) bool {
	if from == "" || path == from {
		return true
	}
	return strings.HasPrefix(path, from) && (path[len(from)] == '.' || path[len(from)] == '[')
}

// indexShape replaces the indexes of a Go path by "[]" and returns them in
// order: "Streams[2].Name" is "Streams[].Name" and ["2"].
func indexShape(p string) (string, []string) {
	var b strings.Builder
	var idx []string
	for {
		i := strings.IndexByte(p, '[')
		if i < 0 {
			b.WriteString(p)
			return b.String(), idx
		}
		j := strings.IndexByte(p[i:], ']')
		if j < 0 {
			b.WriteString(p)
			return b.String(), idx
		}
		b.WriteString(p[:i] + "[]")
		idx = append(idx, p[i+1:i+j])
		p = p[i+j+1:]
	}
}

// keyOf spells goPath, a Go field path inside Config ("Streams[2].MaxEventBytes"),
// as its YAML key ("streams[2].max_event_bytes") by the koanf tags of
// Config's fields.
func keyOf(goPath string) string {
	key, _ := keyIn(reflect.TypeFor[Config](), goPath)
	return key
}

// keyIn spells goPath, a Go field path inside a value of type t, with the
// koanf tags of the fields it goes through. Where the path leaves t's
// fields (a field t does not have), the rest is kept as it is, after the
// part that was spelled, and ok is false.
func keyIn(t reflect.Type, goPath string) (key string, ok bool) {
	var b strings.Builder
	rest := goPath
	for rest != "" {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if rest[0] == '[' {
			j := strings.IndexByte(rest, ']')
			if j < 0 || (t.Kind() != reflect.Slice && t.Kind() != reflect.Array && t.Kind() != reflect.Map) {
				return joinKey(b.String(), rest), false
			}
			b.WriteString(rest[:j+1])
			t, rest = t.Elem(), strings.TrimPrefix(rest[j+1:], ".")
			continue
		}
		name := rest
		if i := strings.IndexAny(rest, ".["); i >= 0 {
			name = rest[:i]
		}
		if t.Kind() != reflect.Struct {
			return joinKey(b.String(), rest), false
		}
		f, found := t.FieldByName(name)
		tag := koanfName(f)
		if !found || !f.IsExported() || tag == "" {
			return joinKey(b.String(), rest), false
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(tag)
		t, rest = f.Type, strings.TrimPrefix(rest[len(name):], ".")
	}
	return b.String(), true
}

// koanfName is the YAML key of field f: its koanf tag.
func koanfName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("koanf"), ",")
	return name
}

func joinKey(key, rest string) string {
	if key == "" || strings.HasPrefix(rest, "[") {
		return key + rest
	}
	return key + "." + rest
}
