package main

import (
	"io"
	"log/slog"
	"strings"
)

// newLogger builds the slog logger of log.level and log.format. Every string and
// error attribute is scrubbed of known secrets, whatever library produced it.
func newLogger(w io.Writer, cfg LogConfig) *slog.Logger {
	l, _ := newLevelLogger(w, cfg)
	return l
}

// newLevelLogger is newLogger with its level in a LevelVar, which a reload
// of log.level sets.
func newLevelLogger(w io.Writer, cfg LogConfig) (*slog.Logger, *slog.LevelVar) {
	level := new(slog.LevelVar)
	level.Set(parseLevel(cfg.Level))
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: redactAttr}
	if cfg.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts)), level
	}
	return slog.New(slog.NewTextHandler(w, opts)), level
}

// parseLevel is the slog level of log.level (info when unknown).
func parseLevel(s string) slog.Level {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}

// redactAttr scrubs secrets from string and error values and the message.
func redactAttr(_ []string, a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		if s := v.String(); s != "" {
			a.Value = slog.StringValue(redactText(s))
		}
	case slog.KindAny:
		if err, ok := v.Any().(error); ok {
			a.Value = slog.StringValue(redactText(err.Error()))
		}
	}
	return a
}
