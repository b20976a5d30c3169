package main

import (
	"fmt"
	"os"
	"strings"
)

// expandValue replaces ${VAR} and ${VAR:-default} in every string of v; $${ is a
// literal ${. A value that is exactly one reference takes the type its text spells
// (like an environment variable), so `partitions: ${PARTITIONS}` works.
func expandValue(v any, path string, errs *[]FieldError) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = expandValue(e, joinPath(path, k), errs)
		}
		return x
	case map[any]any: // YAML mappings with non-string keys
		out := make(map[string]any, len(x))
		for k, e := range x {
			ks := fmt.Sprint(k)
			out[ks] = expandValue(e, joinPath(path, ks), errs)
		}
		return out
	case []any:
		for i, e := range x {
			x[i] = expandValue(e, fmt.Sprintf("%s[%d]", path, i), errs)
		}
		return x
	case string:
		if !strings.Contains(x, "${") {
			return x
		}
		s, whole, err := expandString(x)
		if err != nil {
			*errs = append(*errs, FieldError{Path: orRoot(path), Msg: err.Error()})
			return x
		}
		if whole {
			return textValue(s)
		}
		return s
	}
	return v
}

// expandString expands s; whole reports that s was exactly one reference.
func expandString(s string) (out string, whole bool, err error) {
	var b strings.Builder
	refs, lits := 0, 0
	for i := 0; i < len(s); {
		if strings.HasPrefix(s[i:], "$${") {
			b.WriteString("${")
			i += 3
			lits++
			continue
		}
		if !strings.HasPrefix(s[i:], "${") {
			b.WriteByte(s[i])
			i++
			lits++
			continue
		}
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return "", false, fmt.Errorf("unterminated ${ in %q", s)
		}
		ref := s[i+2 : i+end]
		name, def, hasDef := strings.Cut(ref, ":-")
		if !validEnvName(name) {
			return "", false, fmt.Errorf("${%s} is not a valid environment variable reference", ref)
		}
		val, ok := os.LookupEnv(name)
		switch {
		case ok && (val != "" || !hasDef):
			b.WriteString(val)
		case hasDef:
			b.WriteString(def)
		default:
			return "", false, fmt.Errorf("${%s} is not set in the environment (write ${%s:-default} for a fallback)", name, name)
		}
		refs++
		i += end + 1
	}
	return b.String(), refs == 1 && lits == 0, nil
}

func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		if c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (i > 0 && c >= '0' && c <= '9') {
			continue
		}
		return false
	}
	return true
}
