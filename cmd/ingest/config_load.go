package main

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"

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
	// BaseDir resolves the relative paths of the file and the defaults; ""
	// means the directory of File when it is read from disk.
	BaseDir string
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

// LoadConfig builds the effective configuration: defaults, then the file, then the
// INGEST_ environment, then flags; then per-stream defaults, RESTLESS_API_KEY, strict
// decoding and validation. Every error is a *ConfigError naming the keys at fault.
func LoadConfig(opts LoadOptions) (*Config, error) {
	k := koanf.New(".")
	origins := map[string]string{} // dotted path -> where a value came from (env, flags)
	var ignoredEnv []string        // INGEST_ variables that name no key

	if err := k.Load(rawBytes(defaultsYAML), kyaml.Parser()); err != nil {
		return nil, fmt.Errorf("built-in defaults: %w", err) // a bug, not a user error
	}

	var fileMap map[string]any
	if opts.File != "" || opts.Data != nil {
		var err error
		fileMap, err = readConfigFile(opts)
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
		key := envKey(name)
		if !namesKey(typeOfConfig, strings.Split(key, ".")) {
			// Not a mistake in the configuration: a platform's variable that
			// happens to share the prefix. Ignored, and listed for a warning.
			ignoredEnv = append(ignoredEnv, name)
			return "", nil
		}
		origins[key] = "environment variable " + name
		return key, textValue(value)
	})
	// A faulty variable or flag is reported with everything else, not alone.
	var layerErrs []FieldError
	if err := k.Load(envProvider, nil, koanf.WithMergeFunc(mergeLayer)); err != nil {
		if ce, ok := asConfigError(err).(*ConfigError); ok {
			layerErrs = append(layerErrs, ce.Errs...)
		}
	}

	if len(opts.Overrides) > 0 {
		flat := map[string]any{}
		for _, o := range opts.Overrides {
			flat[o.Key] = textValue(o.Value)
			origins[o.Key] = o.Origin
		}
		if err := k.Load(confmap.Provider(flat, "."), nil, koanf.WithMergeFunc(mergeLayer)); err != nil {
			if ce, ok := asConfigError(err).(*ConfigError); ok {
				layerErrs = append(layerErrs, ce.Errs...)
			}
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
	errs := append(layerErrs, unknownKeys(raw, reflect.TypeFor[Config](), "", origins, true)...)
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
	// A value of the wrong type is reported, its field left zero, and the rest
	// still checked: one run lists every problem. The checks' findings at a
	// key that already has a type error are left out (they would be about the
	// zero value, not the user's).
	var typeErrs []FieldError
	if err := clean.UnmarshalWithConf("", &cfg, koanf.UnmarshalConf{DecoderConfig: dc}); err != nil {
		typeErrs = decodeErrors(err, origins).Errs
		errs = append(errs, typeErrs...)
	}
	cfg.ignoredEnv = sortedCopy(ignoredEnv)
	restlessEnvDefaults(&cfg, func(key string) bool {
		if _, ok := origins[key]; ok {
			return true
		}
		r, _ := fileMap["restless"].(map[string]any)
		_, inFile := r[strings.TrimPrefix(key, "restless.")]
		return inFile
	})
	if cfg.Restless.APIKey == "" {
		cfg.Restless.APIKey = ingest.Secret(os.Getenv(envAPIKey))
	}
	cfg.resolvePaths(configBaseDir(opts), origins)
	if opts.OnlyRestless {
		v := &validator{}
		v.httpURL("restless.base_url", cfg.Restless.BaseURL)
		v.httpURL("restless.stream_base_url", cfg.Restless.StreamBaseURL)
		if len(errs)+len(v.errs) > 0 {
			return nil, &ConfigError{Errs: append(errs, withoutTypeErrorKeys(v.errs, typeErrs)...)}
		}
		return &cfg, nil
	}
	if err := cfg.normalize(); err != nil {
		var ce *ConfigError
		if errors.As(err, &ce) {
			errs = append(errs, withoutTypeErrorKeys(ce.Errs, typeErrs)...)
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

// rawBytes is a koanf provider of a fixed YAML document.
type rawBytes string

func (r rawBytes) ReadBytes() ([]byte, error)    { return []byte(r), nil }
func (r rawBytes) Read() (map[string]any, error) { return nil, errors.New("rawBytes: use ReadBytes") }
