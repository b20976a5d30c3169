package main

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	kyaml "github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/confmap"
	kenv "github.com/knadh/koanf/providers/env"
	"github.com/knadh/koanf/v2"
	"go.yaml.in/yaml/v3"

	"github.com/restless-stream/ingest"
)

// envPrefix starts every environment variable that sets a configuration key.
const envPrefix = "INGEST_"

// envConfigFile replaces -c; it names the file and is not itself a key.
const envConfigFile = "INGEST_CONFIG"

// envAPIKey fills restless.api_key when the configuration leaves it unset.
const envAPIKey = "RESTLESS_API_KEY"

// Override is one key set by a flag: Key is a dotted path (streams.0.since), Value is
// parsed like an environment variable, Origin names the flag in messages.
type Override struct {
	Key, Value, Origin string
}

// LoadOptions says where the configuration comes from.
type LoadOptions struct {
	// File is the YAML file; "" means none (defaults, environment and flags only).
	File string
	// Data, when non-nil, is used as the file's content instead of reading File.
	Data []byte
	// Overrides are the flags, applied last.
	Overrides []Override
	// OnlyRestless reads and checks only the restless section (ingest streams).
	OnlyRestless bool
}

// LoadRestless loads only the restless section, from file ("" = none), the
// environment and flags: what `ingest streams` needs.
func LoadRestless(file string, ov []Override) (*RestlessConfig, error) {
	cfg, err := LoadConfig(LoadOptions{File: file, Overrides: ov, OnlyRestless: true})
	if err != nil {
		return nil, err
	}
	return &cfg.Restless, nil
}

// textValue is a value that arrived as text from the environment or a flag. Unlike
// a YAML string it may be converted to the type of its key (a number, a boolean, a
// duration, a comma-separated list).
type textValue string

// LoadConfig builds the effective configuration: defaults, then the file, then the
// INGEST_ environment, then flags; then per-stream defaults, RESTLESS_API_KEY, strict
// decoding and validation. Every error is a *ConfigError naming the keys at fault.
func LoadConfig(opts LoadOptions) (*Config, error) {
	k := koanf.New(".")
	origins := map[string]string{} // dotted path -> where a value came from (env, flags)

	if err := k.Load(rawBytes(defaultsYAML), kyaml.Parser()); err != nil {
		return nil, fmt.Errorf("built-in defaults: %w", err) // a bug, not a user error
	}

	if opts.File != "" || opts.Data != nil {
		fileMap, err := readConfigFile(opts)
		if err != nil {
			return nil, err
		}
		if err := k.Load(confmap.Provider(fileMap, ""), nil, koanf.WithMergeFunc(mergeLayer)); err != nil {
			return nil, asConfigError(err)
		}
	}

	envProvider := kenv.ProviderWithValue(envPrefix, ".", func(name, value string) (string, any) {
		if name == envConfigFile {
			return "", nil
		}
		key := strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(name, envPrefix)), "__", ".")
		origins[key] = "environment variable " + name
		return key, textValue(value)
	})
	if err := k.Load(envProvider, nil, koanf.WithMergeFunc(mergeLayer)); err != nil {
		return nil, asConfigError(err)
	}

	if len(opts.Overrides) > 0 {
		flat := map[string]any{}
		for _, o := range opts.Overrides {
			flat[o.Key] = textValue(o.Value)
			origins[o.Key] = o.Origin
		}
		if err := k.Load(confmap.Provider(flat, "."), nil, koanf.WithMergeFunc(mergeLayer)); err != nil {
			return nil, asConfigError(err)
		}
	}

	raw := k.Raw()
	if opts.OnlyRestless {
		raw = map[string]any{"restless": raw["restless"]}
	}
	if err := applyStreamDefaults(raw); err != nil {
		return nil, err
	}
	// Unknown keys are reported and removed, so that one run lists every problem.
	errs := unknownKeys(raw, reflect.TypeFor[Config](), "", origins, true)
	clean := koanf.New(".")
	if err := clean.Load(confmap.Provider(raw, ""), nil); err != nil {
		return nil, asConfigError(err)
	}

	var cfg Config
	dc := &mapstructure.DecoderConfig{
		ErrorUnused: true, // a safety net: unknownKeys has already removed them
		MatchName:   func(mapKey, fieldName string) bool { return mapKey == fieldName },
		TagName:     "koanf",
		DecodeHook:  decodeHook,
		Result:      &cfg,
	}
	if err := clean.UnmarshalWithConf("", &cfg, koanf.UnmarshalConf{DecoderConfig: dc}); err != nil {
		errs = append(errs, decodeErrors(err, origins).Errs...)
		return nil, &ConfigError{Errs: errs}
	}
	if cfg.Restless.APIKey == "" {
		cfg.Restless.APIKey = ingest.Secret(os.Getenv(envAPIKey))
	}
	if opts.OnlyRestless {
		v := &validator{}
		v.httpURL("restless.base_url", cfg.Restless.BaseURL)
		v.httpURL("restless.stream_base_url", cfg.Restless.StreamBaseURL)
		if len(errs)+len(v.errs) > 0 {
			return nil, &ConfigError{Errs: append(errs, v.errs...)}
		}
		return &cfg, nil
	}
	if err := cfg.normalize(); err != nil {
		var ce *ConfigError
		if errors.As(err, &ce) {
			errs = append(errs, ce.Errs...)
		}
	}
	if len(errs) > 0 {
		return nil, &ConfigError{Errs: errs}
	}
	return &cfg, nil
}

// readConfigFile reads and parses the YAML file and expands ${VAR} in its values.
func readConfigFile(opts LoadOptions) (map[string]any, error) {
	name := opts.File
	if name == "" {
		name = "config"
	}
	b := opts.Data
	if b == nil {
		var err error
		b, err = os.ReadFile(opts.File)
		if err != nil {
			return nil, &ConfigError{Errs: []FieldError{{Path: "-c", Msg: fmt.Sprintf("cannot read %s: %v", opts.File, unwrapPathError(err))}}}
		}
	}
	var m map[string]any
	if err := yaml.Unmarshal(b, &m); err != nil {
		return nil, &ConfigError{Errs: []FieldError{{Path: name, Msg: "not valid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}}}
	}
	if m == nil {
		m = map[string]any{}
	}
	var errs []FieldError
	expanded := expandValue(m, "", &errs)
	if len(errs) > 0 {
		return nil, &ConfigError{Errs: errs}
	}
	out, ok := expanded.(map[string]any)
	if !ok {
		return nil, &ConfigError{Errs: []FieldError{{Path: name, Msg: "expected a mapping at the top level"}}}
	}
	return out, nil
}

func unwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

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

// mergeLayer merges src over dest like koanf's default, except that a mapping whose
// keys are all list indexes (streams.0.since from INGEST_STREAMS__0__SINCE) updates
// the entries of a list instead of replacing it.
func mergeLayer(src, dest map[string]any) error {
	return mergeAt(src, dest, "")
}

func mergeAt(src, dest map[string]any, path string) error {
	for k, sv := range src {
		p := joinPath(path, k)
		dv, exists := dest[k]
		sm, isMap := sv.(map[string]any)
		if !isMap {
			dest[k] = sv
			continue
		}
		if list, isList := dv.([]any); (isList || !exists || dv == nil) && isIndexMap(sm) {
			nl, err := mergeIndexed(list, sm, p)
			if err != nil {
				return err
			}
			dest[k] = nl
			continue
		}
		if dm, ok := dv.(map[string]any); ok {
			if err := mergeAt(sm, dm, p); err != nil {
				return err
			}
			continue
		}
		dest[k] = sm
	}
	return nil
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

func mergeIndexed(list []any, m map[string]any, path string) ([]any, error) {
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
				if err := mergeAt(sm, dm, p); err != nil {
					return nil, err
				}
			} else {
				out[i] = v
			}
		case i == len(out):
			out = append(out, v)
		default:
			return nil, &ConfigError{Errs: []FieldError{{Path: p, Msg: fmt.Sprintf("index out of range: the list has %d entries, so the next one is [%d]", len(out), len(out))}}}
		}
	}
	return out, nil
}

// applyStreamDefaults fills every key a stream (and its direct target) leaves unset.
func applyStreamDefaults(raw map[string]any) error {
	list, ok := raw["streams"].([]any)
	if !ok {
		return nil
	}
	var sd, dd map[string]any
	if err := yaml.Unmarshal([]byte(streamDefaultsYAML), &sd); err != nil {
		return err
	}
	if err := yaml.Unmarshal([]byte(directDefaultsYAML), &dd); err != nil {
		return err
	}
	for _, e := range list {
		m, ok := e.(map[string]any)
		if !ok {
			continue
		}
		fillMissing(m, deepCopy(sd).(map[string]any))
		if d, ok := m["direct"].(map[string]any); ok {
			fillMissing(d, deepCopy(dd).(map[string]any))
		}
	}
	return nil
}

func fillMissing(dst, defaults map[string]any) {
	for k, dv := range defaults {
		cur, ok := dst[k]
		if !ok {
			dst[k] = dv
			continue
		}
		cm, cok := cur.(map[string]any)
		dm, dok := dv.(map[string]any)
		if cok && dok {
			fillMissing(cm, dm)
		}
	}
}

func deepCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = deepCopy(e)
		}
		return m
	case []any:
		l := make([]any, len(x))
		for i, e := range x {
			l[i] = deepCopy(e)
		}
		return l
	}
	return v
}

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

// asConfigError keeps a *ConfigError and wraps anything else.
func asConfigError(err error) error {
	var ce *ConfigError
	if errors.As(err, &ce) {
		return ce
	}
	return &ConfigError{Errs: []FieldError{{Path: "(top level)", Msg: err.Error()}}}
}

// rawBytes is a koanf provider of a fixed YAML document.
type rawBytes string

func (r rawBytes) ReadBytes() ([]byte, error)    { return []byte(r), nil }
func (r rawBytes) Read() (map[string]any, error) { return nil, errors.New("rawBytes: use ReadBytes") }
