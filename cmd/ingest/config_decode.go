package main

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
)

// textValue is a value that arrived as text from the environment or a flag. Unlike
// a YAML string it may be converted to the type of its key (a number, a boolean, a
// duration, a comma-separated list).
type textValue string

// unknownKeys reports every key of raw that has no field in t, with a suggestion.
// With remove set, it deletes them from raw.
func unknownKeys(raw any, t reflect.Type, path string, origins map[string]string, remove bool) []FieldError {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var errs []FieldError
	switch t.Kind() {
	case reflect.Struct:
		m, ok := raw.(map[string]any)
		if !ok {
			return nil // a type error, reported by the decoder
		}
		fields := map[string]reflect.Type{}
		for i := range t.NumField() {
			f := t.Field(i)
			if tag := f.Tag.Get("koanf"); tag != "" {
				fields[tag] = f.Type
			}
		}
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			p := joinPath(path, k)
			ft, ok := fields[k]
			if !ok {
				errs = append(errs, FieldError{Path: p, Msg: unknownKeyMsg(k, fields) + originNote(p, origins)})
				if remove {
					delete(m, k)
				}
				continue
			}
			errs = append(errs, unknownKeys(m[k], ft, p, origins, remove)...)
		}
	case reflect.Slice:
		l, ok := raw.([]any)
		if !ok {
			return nil
		}
		for i, e := range l {
			errs = append(errs, unknownKeys(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i), origins, remove)...)
		}
	}
	return errs
}

func unknownKeyMsg(k string, fields map[string]reflect.Type) string {
	best, bestD := "", 3
	names := make([]string, 0, len(fields))
	for f := range fields {
		names = append(names, f)
	}
	sort.Strings(names)
	for _, f := range names {
		if d := editDistance(k, f); d < bestD {
			best, bestD = f, d
		}
	}
	if best != "" {
		return fmt.Sprintf("unknown key (did you mean %s?)", best)
	}
	return "unknown key; expected one of " + strings.Join(names, ", ")
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := 1
			if a[i-1] == b[j-1] {
				c = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+c)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

var (
	durationType  = reflect.TypeFor[Duration]()
	textValueType = reflect.TypeFor[textValue]()
	timeType      = reflect.TypeFor[time.Time]()
)

// decodeHook converts what YAML, the environment and flags give into the fields'
// types, strictly: a YAML string is never taken for a number or a boolean.
func decodeHook(from, to reflect.Type, data any) (any, error) {
	if from == textValueType {
		return fromText(string(data.(textValue)), to)
	}
	if to == durationType {
		switch v := data.(type) {
		case string:
			return parseDuration(v)
		case Duration:
			return v, nil
		default:
			return nil, fmt.Errorf("%s is not a duration (e.g. 30s)", describe(data))
		}
	}
	if to.Kind() == reflect.String {
		switch v := data.(type) {
		case int, int64, uint64, float64, bool:
			return fmt.Sprint(v), nil
		case time.Time:
			return v.Format(time.RFC3339Nano), nil
		}
	}
	if data != nil {
		switch to.Kind() {
		case reflect.Slice:
			if from.Kind() != reflect.Slice {
				return nil, fmt.Errorf("%s is not a list", describe(data))
			}
		case reflect.Struct, reflect.Map:
			if from.Kind() != reflect.Map && from != to {
				return nil, fmt.Errorf("%s is not a mapping", describe(data))
			}
		case reflect.Pointer:
			if to.Elem().Kind() == reflect.Struct && from.Kind() != reflect.Map && from != to {
				return nil, fmt.Errorf("%s is not a mapping", describe(data))
			}
		}
	}
	if to.Kind() == reflect.Interface && from == timeType {
		return data.(time.Time).Format(time.RFC3339Nano), nil
	}
	return data, nil
}

func parseDuration(s string) (Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration (e.g. 30s)", s)
	}
	return Duration(d), nil
}

// fromText converts the text of an environment variable or flag to type to.
func fromText(s string, to reflect.Type) (any, error) {
	if to == durationType {
		return parseDuration(s)
	}
	switch to.Kind() {
	case reflect.String, reflect.Interface:
		return s, nil
	case reflect.Bool:
		b, err := strconv.ParseBool(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("%q is not a boolean (true or false)", s)
		}
		return b, nil
	case reflect.Int, reflect.Int64, reflect.Int32:
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("%q is not an integer", s)
		}
		return n, nil
	case reflect.Float64, reflect.Float32:
		f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil {
			return nil, fmt.Errorf("%q is not a number", s)
		}
		return f, nil
	case reflect.Slice:
		if to.Elem().Kind() == reflect.String {
			if strings.TrimSpace(s) == "" {
				return []string{}, nil
			}
			parts := strings.Split(s, ",")
			for i := range parts {
				parts[i] = strings.TrimSpace(parts[i])
			}
			return parts, nil
		}
	}
	return nil, fmt.Errorf("cannot be set from text; set it in the config file")
}

// describe names a decoded YAML value for a message, without echoing long strings.
func describe(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		if len(x) > 40 {
			x = x[:40] + "…"
		}
		return strconv.Quote(x)
	case map[string]any:
		return "a mapping"
	case []any:
		return "a list"
	case bool:
		return "the boolean " + strconv.FormatBool(x)
	case int, int64, uint64:
		return fmt.Sprintf("the number %v", x)
	case float64:
		return "the number " + strconv.FormatFloat(x, 'g', -1, 64)
	}
	return fmt.Sprintf("%T", v)
}

// expected names what a field of type t wants.
func expected(t reflect.Type) string {
	if t == durationType {
		return "a duration (e.g. 30s)"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean (true or false)"
	case reflect.Int, reflect.Int64, reflect.Int32, reflect.Uint, reflect.Uint64:
		return "an integer"
	case reflect.Float64, reflect.Float32:
		return "a number"
	case reflect.Slice:
		return "a list"
	case reflect.Map, reflect.Struct, reflect.Pointer:
		return "a mapping"
	}
	return t.String()
}

// decodeErrors turns the decoder's errors into FieldErrors with key paths.
func decodeErrors(err error, origins map[string]string) *ConfigError {
	var out []FieldError
	var walk func(err error, name string)
	walk = func(err error, name string) {
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e, name)
			}
			return
		}
		p := orRoot(name)
		switch x := err.(type) {
		case *mapstructure.DecodeError:
			walk(x.Unwrap(), x.Name())
		case *mapstructure.UnconvertibleTypeError:
			out = append(out, FieldError{Path: p, Msg: fmt.Sprintf("%s is not %s", describe(x.Value), expected(x.Expected.Type())) + originNote(p, origins)})
		case *mapstructure.ParseError:
			out = append(out, FieldError{Path: p, Msg: fmt.Sprintf("%s is not %s", describe(x.Value), expected(x.Expected.Type())) + originNote(p, origins)})
		default:
			if inner := errors.Unwrap(err); inner != nil {
				walk(inner, name)
				return
			}
			out = append(out, FieldError{Path: p, Msg: err.Error() + originNote(p, origins)})
		}
	}
	walk(err, "")
	sort.SliceStable(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return &ConfigError{Errs: out}
}
