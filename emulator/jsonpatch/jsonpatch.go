// Package jsonpatch creates and applies RFC 6902 JSON Patch documents.
//
// Diff produces a patch that turns one JSON document into another. It favours
// correctness over minimality: objects are compared key by key and recursively,
// arrays index by index (extra elements are added at the end or removed from the
// end), and anything else that differs is replaced. Numbers are compared and
// copied as written, so 1 and 1.0 count as different values.
//
// Apply applies a patch with all six operations (add, remove, replace, move,
// copy, test). Both work on raw JSON bytes; values keep their numbers as written.
package jsonpatch

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

// Operation is one RFC 6902 operation.
type Operation struct {
	Op    string          `json:"op"`
	Path  string          `json:"path"`
	From  string          `json:"from,omitempty"`
	Value json.RawMessage `json:"value,omitempty"`
}

// ErrTestFailed is returned (wrapped) by Apply when a "test" operation does not match.
var ErrTestFailed = errors.New("jsonpatch: test operation failed")

// Diff returns the patch, as a JSON array, that turns document a into document b.
// It returns an error when a or b is not a single valid JSON value.
func Diff(a, b []byte) ([]byte, error) {
	va, err := decode(a)
	if err != nil {
		return nil, fmt.Errorf("jsonpatch: first document: %w", err)
	}
	vb, err := decode(b)
	if err != nil {
		return nil, fmt.Errorf("jsonpatch: second document: %w", err)
	}
	ops, err := DiffValues(va, vb)
	if err != nil {
		return nil, err
	}
	return json.Marshal(ops)
}

// DiffValues is Diff on decoded values: map[string]any, []any, json.Number,
// float64, string, bool and nil, as encoding/json decodes them.
func DiffValues(a, b any) ([]Operation, error) {
	d := differ{ops: []Operation{}}
	if err := d.diff("", a, b); err != nil {
		return nil, err
	}
	return d.ops, nil
}

type differ struct {
	ops []Operation
}

func (d *differ) emit(op, path string, v any) error {
	o := Operation{Op: op, Path: path}
	if op != "remove" {
		raw, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("jsonpatch: encode value at %q: %w", path, err)
		}
		o.Value = raw
	}
	d.ops = append(d.ops, o)
	return nil
}

func (d *differ) diff(path string, a, b any) error {
	switch ta := a.(type) {
	case map[string]any:
		tb, ok := b.(map[string]any)
		if !ok {
			return d.emit("replace", path, b)
		}
		keys := make([]string, 0, len(ta))
		for k := range ta {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			vb, ok := tb[k]
			if !ok {
				if err := d.emit("remove", path+"/"+escape(k), nil); err != nil {
					return err
				}
				continue
			}
			if err := d.diff(path+"/"+escape(k), ta[k], vb); err != nil {
				return err
			}
		}
		keys = keys[:0]
		for k := range tb {
			if _, ok := ta[k]; !ok {
				keys = append(keys, k)
			}
		}
		slices.Sort(keys)
		for _, k := range keys {
			if err := d.emit("add", path+"/"+escape(k), tb[k]); err != nil {
				return err
			}
		}
		return nil
	case []any:
		tb, ok := b.([]any)
		if !ok {
			return d.emit("replace", path, b)
		}
		n := min(len(ta), len(tb))
		for i := 0; i < n; i++ {
			if err := d.diff(path+"/"+strconv.Itoa(i), ta[i], tb[i]); err != nil {
				return err
			}
		}
		for i := n; i < len(tb); i++ {
			if err := d.emit("add", path+"/"+strconv.Itoa(i), tb[i]); err != nil {
				return err
			}
		}
		for i := len(ta) - 1; i >= n; i-- {
			if err := d.emit("remove", path+"/"+strconv.Itoa(i), nil); err != nil {
				return err
			}
		}
		return nil
	default:
		if !Equal(a, b) {
			return d.emit("replace", path, b)
		}
		return nil
	}
}

// Equal reports whether two decoded JSON values are equal. Numbers are equal
// when written the same way (json.Number) or equal as float64.
func Equal(a, b any) bool {
	switch ta := a.(type) {
	case map[string]any:
		tb, ok := b.(map[string]any)
		if !ok || len(ta) != len(tb) {
			return false
		}
		for k, va := range ta {
			vb, ok := tb[k]
			if !ok || !Equal(va, vb) {
				return false
			}
		}
		return true
	case []any:
		tb, ok := b.([]any)
		if !ok || len(ta) != len(tb) {
			return false
		}
		for i := range ta {
			if !Equal(ta[i], tb[i]) {
				return false
			}
		}
		return true
	case json.Number:
		tb, ok := b.(json.Number)
		return ok && ta == tb
	case float64:
		tb, ok := b.(float64)
		return ok && ta == tb
	case string:
		tb, ok := b.(string)
		return ok && ta == tb
	case bool:
		tb, ok := b.(bool)
		return ok && ta == tb
	case nil:
		return b == nil
	default:
		return false
	}
}

// Apply applies patch (a JSON array of operations) to doc and returns the new
// document. Object keys of the result are sorted; numbers keep their text.
func Apply(doc, patch []byte) ([]byte, error) {
	v, err := decode(doc)
	if err != nil {
		return nil, fmt.Errorf("jsonpatch: document: %w", err)
	}
	var ops []Operation
	if err := json.Unmarshal(patch, &ops); err != nil {
		return nil, fmt.Errorf("jsonpatch: patch is not an array of operations: %w", err)
	}
	if ops == nil && !bytes.Equal(bytes.TrimSpace(patch), []byte("[]")) {
		return nil, errors.New("jsonpatch: patch is not an array of operations")
	}
	if err := checkMembers(patch); err != nil {
		return nil, err
	}
	v, err = ApplyValues(v, ops)
	if err != nil {
		return nil, err
	}
	return json.Marshal(v)
}

// checkMembers refuses an operation without "path", or a move or copy
// without "from", or one of them not a string (RFC 6902 §4): decoded into
// an Operation, a missing one would read as "", the whole document.
func checkMembers(patch []byte) error {
	var raw []map[string]json.RawMessage
	if err := json.Unmarshal(patch, &raw); err != nil {
		return fmt.Errorf("jsonpatch: patch is not an array of operations: %w", err)
	}
	for i, m := range raw {
		var op string
		_ = json.Unmarshal(m["op"], &op)
		need := []string{"path"}
		if op == "move" || op == "copy" {
			need = append(need, "from")
		}
		for _, k := range need {
			if v := m[k]; len(v) == 0 || v[0] != '"' {
				return fmt.Errorf("jsonpatch: operation %d (%s): %q missing or not a string", i, op, k)
			}
		}
	}
	return nil
}

// ApplyValues applies ops to a decoded document and returns the new document.
// The input may be modified.
func ApplyValues(doc any, ops []Operation) (any, error) {
	for i, op := range ops {
		var err error
		doc, err = applyOp(doc, op)
		if err != nil {
			return nil, fmt.Errorf("jsonpatch: operation %d (%s %q): %w", i, op.Op, op.Path, err)
		}
	}
	return doc, nil
}

func applyOp(doc any, op Operation) (any, error) {
	switch op.Op {
	case "add", "replace", "test":
		if op.Value == nil {
			return nil, errors.New("missing value")
		}
		val, err := decode(op.Value)
		if err != nil {
			return nil, fmt.Errorf("value: %w", err)
		}
		switch op.Op {
		case "add":
			return add(doc, op.Path, val)
		case "replace":
			if _, err := get(doc, op.Path); err != nil {
				return nil, err
			}
			doc, _, err = remove(doc, op.Path)
			if err != nil {
				return nil, err
			}
			return add(doc, op.Path, val)
		default:
			cur, err := get(doc, op.Path)
			if err != nil {
				return nil, err
			}
			if !Equal(cur, val) {
				return nil, ErrTestFailed
			}
			return doc, nil
		}
	case "remove":
		doc, _, err := remove(doc, op.Path)
		return doc, err
	case "move":
		if op.From == op.Path {
			_, err := get(doc, op.From)
			return doc, err
		}
		if strings.HasPrefix(op.Path, op.From+"/") {
			return nil, errors.New("cannot move a value into one of its children")
		}
		doc, val, err := remove(doc, op.From)
		if err != nil {
			return nil, fmt.Errorf("from: %w", err)
		}
		return add(doc, op.Path, val)
	case "copy":
		val, err := get(doc, op.From)
		if err != nil {
			return nil, fmt.Errorf("from: %w", err)
		}
		return add(doc, op.Path, deepCopy(val))
	default:
		return nil, fmt.Errorf("unknown op %q", op.Op)
	}
}

func decode(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data after the JSON value")
	}
	return v, nil
}

func deepCopy(v any) any {
	switch t := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(t))
		for k, e := range t {
			m[k] = deepCopy(e)
		}
		return m
	case []any:
		s := make([]any, len(t))
		for i, e := range t {
			s[i] = deepCopy(e)
		}
		return s
	default:
		return v
	}
}

func escape(k string) string {
	if !strings.ContainsAny(k, "~/") {
		return k
	}
	return strings.ReplaceAll(strings.ReplaceAll(k, "~", "~0"), "/", "~1")
}

func unescape(k string) string {
	if !strings.Contains(k, "~") {
		return k
	}
	return strings.ReplaceAll(strings.ReplaceAll(k, "~1", "/"), "~0", "~")
}

// split parses a JSON pointer into unescaped tokens.
func split(path string) ([]string, error) {
	if path == "" {
		return nil, nil
	}
	if path[0] != '/' {
		return nil, fmt.Errorf("path %q does not start with /", path)
	}
	parts := strings.Split(path[1:], "/")
	for i, p := range parts {
		for j := 0; j < len(p); j++ {
			if p[j] == '~' && (j+1 == len(p) || (p[j+1] != '0' && p[j+1] != '1')) {
				return nil, fmt.Errorf("path %q has a bad ~ escape", path)
			}
		}
		parts[i] = unescape(p)
	}
	return parts, nil
}

// index parses an array index token; end allows "-" and len(arr).
func index(tok string, n int, end bool) (int, error) {
	if end && tok == "-" {
		return n, nil
	}
	if tok == "" || (len(tok) > 1 && tok[0] == '0') {
		return 0, fmt.Errorf("bad array index %q", tok)
	}
	for _, c := range []byte(tok) {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("bad array index %q", tok)
		}
	}
	i, err := strconv.Atoi(tok)
	if err != nil {
		return 0, fmt.Errorf("bad array index %q", tok)
	}
	limit := n - 1
	if end {
		limit = n
	}
	if i > limit {
		return 0, fmt.Errorf("array index %d out of range (length %d)", i, n)
	}
	return i, nil
}

func get(doc any, path string) (any, error) {
	toks, err := split(path)
	if err != nil {
		return nil, err
	}
	cur := doc
	for _, t := range toks {
		switch c := cur.(type) {
		case map[string]any:
			v, ok := c[t]
			if !ok {
				return nil, fmt.Errorf("path %q: no member %q", path, t)
			}
			cur = v
		case []any:
			i, err := index(t, len(c), false)
			if err != nil {
				return nil, fmt.Errorf("path %q: %w", path, err)
			}
			cur = c[i]
		default:
			return nil, fmt.Errorf("path %q: %q is inside a scalar", path, t)
		}
	}
	return cur, nil
}

// update walks to the parent of path, lets fn replace the container, and
// stores the result back. It returns the new document.
func update(doc any, toks []string, path string, fn func(container any, last string) (any, error)) (any, error) {
	if len(toks) == 1 {
		return fn(doc, toks[0])
	}
	switch c := doc.(type) {
	case map[string]any:
		child, ok := c[toks[0]]
		if !ok {
			return nil, fmt.Errorf("path %q: no member %q", path, toks[0])
		}
		nc, err := update(child, toks[1:], path, fn)
		if err != nil {
			return nil, err
		}
		c[toks[0]] = nc
		return c, nil
	case []any:
		i, err := index(toks[0], len(c), false)
		if err != nil {
			return nil, fmt.Errorf("path %q: %w", path, err)
		}
		nc, err := update(c[i], toks[1:], path, fn)
		if err != nil {
			return nil, err
		}
		c[i] = nc
		return c, nil
	default:
		return nil, fmt.Errorf("path %q: %q is inside a scalar", path, toks[0])
	}
}

func add(doc any, path string, val any) (any, error) {
	toks, err := split(path)
	if err != nil {
		return nil, err
	}
	if len(toks) == 0 {
		return val, nil
	}
	return update(doc, toks, path, func(container any, last string) (any, error) {
		switch c := container.(type) {
		case map[string]any:
			c[last] = val
			return c, nil
		case []any:
			i, err := index(last, len(c), true)
			if err != nil {
				return nil, fmt.Errorf("path %q: %w", path, err)
			}
			return slices.Insert(c, i, val), nil
		default:
			return nil, fmt.Errorf("path %q: parent is not an object or array", path)
		}
	})
}

func remove(doc any, path string) (any, any, error) {
	toks, err := split(path)
	if err != nil {
		return nil, nil, err
	}
	if len(toks) == 0 {
		return nil, doc, nil
	}
	var removed any
	doc, err = update(doc, toks, path, func(container any, last string) (any, error) {
		switch c := container.(type) {
		case map[string]any:
			v, ok := c[last]
			if !ok {
				return nil, fmt.Errorf("path %q: no member %q", path, last)
			}
			removed = v
			delete(c, last)
			return c, nil
		case []any:
			i, err := index(last, len(c), false)
			if err != nil {
				return nil, fmt.Errorf("path %q: %w", path, err)
			}
			removed = c[i]
			return slices.Delete(c, i, i+1), nil
		default:
			return nil, fmt.Errorf("path %q: parent is not an object or array", path)
		}
	})
	return doc, removed, err
}
