package main

import (
	"fmt"
	"sort"
	"strconv"
)

// mergeLayer merges src over dest like koanf's default, except that a mapping whose
// keys are all list indexes (streams.0.since from INGEST_STREAMS__0__SINCE) updates
// the entries of a list instead of replacing it.
// A faulty entry is left out and the merge goes on, so that one run reports
// every problem; the error lists them.
func mergeLayer(src, dest map[string]any) error {
	var errs []FieldError
	mergeAt(src, dest, "", &errs)
	if len(errs) > 0 {
		return &ConfigError{Errs: errs}
	}
	return nil
}

func mergeAt(src, dest map[string]any, path string, errs *[]FieldError) {
	for k, sv := range src {
		p := joinPath(path, k)
		dv, exists := dest[k]
		sm, isMap := sv.(map[string]any)
		if !isMap {
			dest[k] = sv
			continue
		}
		if list, isList := dv.([]any); (isList || !exists || dv == nil) && isIndexMap(sm) {
			dest[k] = mergeIndexed(list, sm, p, errs)
			continue
		}
		if dm, ok := dv.(map[string]any); ok {
			mergeAt(sm, dm, p, errs)
			continue
		}
		dest[k] = sm
	}
}

func isIndexMap(m map[string]any) bool {
	if len(m) == 0 {
		return false
	}
	for k := range m {
		if _, err := strconv.ParseUint(k, 10, 31); err != nil {
			return false
		}
	}
	return true
}

func mergeIndexed(list []any, m map[string]any, path string, errs *[]FieldError) []any {
	idx := make([]int, 0, len(m))
	for k := range m {
		i, _ := strconv.Atoi(k)
		idx = append(idx, i)
	}
	sort.Ints(idx)
	out := append([]any(nil), list...)
	for _, i := range idx {
		v := m[strconv.Itoa(i)]
		p := fmt.Sprintf("%s[%d]", path, i)
		switch {
		case i < len(out):
			dm, dok := out[i].(map[string]any)
			sm, sok := v.(map[string]any)
			if dok && sok {
				mergeAt(sm, dm, p, errs)
			} else {
				out[i] = v
			}
		case i == len(out):
			out = append(out, v)
		default:
			*errs = append(*errs, FieldError{Path: p, Msg: fmt.Sprintf("index out of range: the list has %d entries, so the next one is [%d]", len(out), len(out))})
		}
	}
	return out
}
