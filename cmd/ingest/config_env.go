package main

import (
	"log/slog"
	"reflect"
	"sort"
	"strconv"
	"strings"
)

// namesKey reports whether the dotted path (as an INGEST_ variable gives it:
// sink.nats.url, streams.0.since) reaches a configuration key of t. Maps accept
// any key and an `any` field accepts anything below it.
func namesKey(t reflect.Type, parts []string) bool {
	for len(parts) > 0 {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		switch t.Kind() {
		case reflect.Struct:
			found := false
			for i := range t.NumField() {
				f := t.Field(i)
				if f.Tag.Get("koanf") == parts[0] {
					t, found = f.Type, true
					break
				}
			}
			if !found {
				return false
			}
		case reflect.Slice:
			if n, err := strconv.Atoi(parts[0]); err != nil || n < 0 {
				return false
			}
			t = t.Elem()
		case reflect.Map:
			t = t.Elem()
		case reflect.Interface:
			return true
		default:
			return false // a scalar has no key below it
		}
		parts = parts[1:]
	}
	return true
}

// envKey is the dotted key an INGEST_ variable sets: INGEST_SINK__NATS__URL is
// sink.nats.url.
func envKey(name string) string {
	return strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(name, envPrefix)), "__", ".")
}

// IgnoredEnv lists, sorted, the INGEST_ variables that name no configuration key
// and were therefore ignored (Kubernetes sets INGEST_SERVICE_HOST, INGEST_PORT…
// for a Service named ingest). The caller warns once.
func (c *Config) IgnoredEnv() []string { return c.ignoredEnv }

func sortedCopy(s []string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}

func ignoredEnvMsg(names []string) string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = n
		if s := envSuggestion(n); s != "" {
			out[i] += " (did you mean " + s + "? use __ between levels)"
		}
	}
	return "ignoring environment variables that name no configuration key: " + strings.Join(out, ", ")
}

// envSuggestion returns the variable that names a key when some of name's single
// underscores become double ones (INGEST_SINK_TYPE: INGEST_SINK__TYPE), or "".
func envSuggestion(name string) string {
	words := strings.Split(strings.ToLower(strings.TrimPrefix(name, envPrefix)), "_")
	if len(words) < 2 || len(words) > 12 {
		return ""
	}
	for mask := 1; mask < 1<<(len(words)-1); mask++ {
		var b strings.Builder
		b.WriteString(words[0])
		for i, w := range words[1:] {
			if mask&(1<<i) != 0 {
				b.WriteString(".")
			} else {
				b.WriteString("_")
			}
			b.WriteString(w)
		}
		key := b.String()
		if namesKey(typeOfConfig, strings.Split(key, ".")) {
			return envPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "__"))
		}
	}
	return ""
}

// warnIgnoredEnv logs, once, the INGEST_ variables that were ignored.
func warnIgnoredEnv(log *slog.Logger, cfg *Config) {
	if ign := cfg.IgnoredEnv(); len(ign) > 0 {
		log.Warn(ignoredEnvMsg(ign))
	}
}

var typeOfConfig = reflect.TypeFor[Config]()
