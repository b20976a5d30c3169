package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// FieldError is one thing wrong with the configuration, at a key path such as
// streams[0].idle_timeout (or a flag such as -c).
type FieldError struct {
	Path string
	Msg  string
}

func (e FieldError) Error() string { return e.Path + ": " + e.Msg }

// ConfigError lists everything wrong with a configuration; it maps to exit code 2.
type ConfigError struct {
	Errs []FieldError
}

func (e *ConfigError) Error() string {
	lines := make([]string, len(e.Errs))
	for i, fe := range e.Errs {
		lines[i] = fe.Error()
	}
	return strings.Join(lines, "\n")
}

// unique drops the repeats of a FieldError, keeping the first: two rules
// (the daemon's and a library's, or one library's for every stream) may
// find the same fault in one key.
func unique(errs []FieldError) []FieldError {
	seen := make(map[FieldError]bool, len(errs))
	out := errs[:0:0]
	for _, e := range errs {
		if !seen[e] {
			seen[e] = true
			out = append(out, e)
		}
	}
	return out
}

// originNote says which variable or flag set a key, when not the file.
func originNote(path string, origins map[string]string) string {
	dotted := strings.NewReplacer("[", ".", "]", "").Replace(path)
	if o, ok := origins[dotted]; ok {
		if strings.HasPrefix(o, "environment") {
			return fmt.Sprintf(" (set by %s; use __ between levels, e.g. INGEST_SINK__TYPE)", o)
		}
		return fmt.Sprintf(" (set by %s)", o)
	}
	return ""
}

func joinPath(path, k string) string {
	if k == "" || strings.ContainsAny(k, " .[]\t\r\n\"") {
		k = strconv.Quote(k) // a key no field has: show it exactly
	}
	if path == "" {
		return k
	}
	return path + "." + k
}

func orRoot(p string) string {
	if p == "" {
		return "(top level)"
	}
	return p
}

// asConfigError keeps a *ConfigError and wraps anything else.
func asConfigError(err error) error {
	var ce *ConfigError
	if errors.As(err, &ce) {
		return ce
	}
	return &ConfigError{Errs: []FieldError{{Path: "(top level)", Msg: err.Error()}}}
}

// withoutTypeErrorKeys drops the errors at (or below, or above) a key that
// already has a type error: they would be about the zero value left there.
func withoutTypeErrorKeys(errs, typeErrs []FieldError) []FieldError {
	if len(typeErrs) == 0 {
		return errs
	}
	related := func(a, b string) bool {
		return a == b || strings.HasPrefix(a, b+".") || strings.HasPrefix(a, b+"[") ||
			strings.HasPrefix(b, a+".") || strings.HasPrefix(b, a+"[")
	}
	out := errs[:0:0]
next:
	for _, e := range errs {
		for _, te := range typeErrs {
			if te.Path != "(top level)" && related(e.Path, te.Path) {
				continue next
			}
		}
		out = append(out, e)
	}
	return out
}
