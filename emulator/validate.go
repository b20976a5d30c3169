package emulator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/restless-stream/ingest/client"
)

var weekdays = map[string]bool{"MON": true, "TUE": true, "WED": true, "THU": true, "FRI": true, "SAT": true, "SUN": true}

// The members each request body may have: those of its model in package
// client, plus the snake_case spelling of the API key (PROTOCOL.md §1).
var (
	streamFields  = jsonFields(client.CreateStreamRequest{}, "api_key")
	setupFields   = jsonFields(client.DirectSetupRequest{}, "api_key")
	sessionFields = jsonFields(client.DirectSessionRequest{}, "api_key", "dedupe_key")
	snippetFields = jsonFields(client.ConnectionSnippetsRequest{})
)

func fieldSet(names ...string) map[string]bool {
	m := map[string]bool{}
	for _, n := range names {
		m[n] = true
	}
	return m
}

// jsonFields returns the JSON member names of the struct model (those of
// its embedded structs included, "-" fields left out), plus extra.
func jsonFields(model any, extra ...string) map[string]bool {
	m := fieldSet(extra...)
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for f := range t.Fields() {
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			switch {
			case f.Anonymous && name == "":
				walk(f.Type)
			case name == "-" || !f.IsExported():
			case name == "":
				m[f.Name] = true
			default:
				m[name] = true
			}
		}
	}
	walk(reflect.TypeOf(model))
	return m
}

// decodeObject decodes a JSON object body into its members, keeping each raw.
func decodeObject(body []byte) (map[string]json.RawMessage, error) {
	var m map[string]json.RawMessage
	if len(bytes.TrimSpace(body)) == 0 {
		return map[string]json.RawMessage{}, nil
	}
	if err := json.Unmarshal(body, &m); err != nil || m == nil {
		return nil, fmt.Errorf("request body must be a JSON object")
	}
	return m, nil
}

// checker collects validation messages, each naming its field.
type checker struct{ msgs []string }

func (c *checker) add(format string, args ...any) {
	c.msgs = append(c.msgs, fmt.Sprintf(format, args...))
}

func (c *checker) unknown(raw map[string]json.RawMessage, allowed map[string]bool) {
	var extra []string
	for k := range raw {
		if !allowed[k] {
			extra = append(extra, k)
		}
	}
	sort.Strings(extra)
	for _, k := range extra {
		c.add("property %s should not exist", k)
	}
}

func (c *checker) str(raw map[string]json.RawMessage, name string, dst *string) bool {
	v, ok := raw[name]
	if !ok || string(v) == "null" {
		return false
	}
	if err := json.Unmarshal(v, dst); err != nil {
		c.add("%s must be a string", name)
		return false
	}
	return true
}

func (c *checker) number(raw map[string]json.RawMessage, name string, dst *float64) bool {
	v, ok := raw[name]
	if !ok || string(v) == "null" {
		return false
	}
	if err := json.Unmarshal(v, dst); err != nil {
		c.add("%s must be a number", name)
		return false
	}
	return true
}

// applyFields validates the stream (or direct input) members of raw and
// stores them in cfg. Only members present are changed.
func (c *checker) applyFields(raw map[string]json.RawMessage, cfg *streamConfig, minInterval float64) {
	var s string
	if c.str(raw, "name", &s) {
		if strings.TrimSpace(s) == "" {
			c.add("name should not be empty")
		}
		cfg.Name = s
	}
	if c.str(raw, "description", &s) {
		cfg.Description = s
	}
	if c.str(raw, "status", &s) {
		cfg.Status = client.StreamStatus(s)
		if !cfg.Status.Valid() {
			c.add("status must be one of the following values: %s, %s", client.StatusActive, client.StatusInactive)
		}
	}
	if c.str(raw, "method", &s) {
		cfg.Method = client.HTTPMethod(strings.ToUpper(s))
		if !cfg.Method.Valid() {
			c.add("method must be one of the following values: %s, %s, %s, %s, %s, %s", client.MethodGet, client.MethodPost,
				client.MethodPut, client.MethodPatch, client.MethodDelete, client.MethodOptions)
		}
	}
	if c.str(raw, "url", &s) {
		if err := checkUpstreamURL(s); err != nil {
			c.add("url %v", err)
		}
		cfg.URL = s
	}
	if v, ok := raw["headers"]; ok && string(v) != "null" {
		var h map[string]string
		if err := json.Unmarshal(v, &h); err != nil {
			c.add("headers must be an object of strings")
		} else {
			for k := range h {
				if k == "" || strings.ContainsAny(k, " \t\r\n:") {
					c.add("headers has an invalid header name %q", k)
				}
			}
			cfg.Headers = h
		}
	}
	if v, ok := raw["body"]; ok {
		if string(v) == "null" {
			cfg.Body = nil
		} else {
			cfg.Body = append(json.RawMessage(nil), v...)
		}
	}
	if c.str(raw, "payloadMode", &s) {
		cfg.PayloadMode = client.PayloadMode(s)
		if !cfg.PayloadMode.Valid() {
			c.add("payloadMode must be one of the following values: %s, %s", client.PayloadFullData, client.PayloadJSONPatch)
		}
	}
	var f float64
	if c.number(raw, "pollingInterval", &f) {
		if !(f >= minInterval) || math.IsInf(f, 0) {
			c.add("pollingInterval must be a number of seconds not less than %g", minInterval)
		}
		cfg.PollingInterval = f
	}
	if c.str(raw, "jqFilter", &s) {
		if _, err := compileJQ(s); err != nil {
			c.add("jqFilter is not a jq program the emulator runs: %v", err)
		}
		cfg.JQFilter = s
	}
	if v, ok := raw["pollingStrategies"]; ok && string(v) != "null" {
		var ps []client.PollingStrategy
		if err := json.Unmarshal(v, &ps); err != nil {
			c.add("pollingStrategies must be an array of {start, end, days, timezone, pollingInterval}")
		} else {
			for i, p := range ps {
				c.strategy(i, p, minInterval)
			}
			cfg.PollingStrategies = ps
		}
	}
	for _, k := range []string{"apiKey", "api_key"} {
		c.str(raw, k, &s)
	}
}

func (c *checker) strategy(i int, p client.PollingStrategy, minInterval float64) {
	if _, err := time.Parse("15:04", p.Start); err != nil {
		c.add("pollingStrategies.%d.start must be a time HH:MM", i)
	}
	if _, err := time.Parse("15:04", p.End); err != nil {
		c.add("pollingStrategies.%d.end must be a time HH:MM", i)
	}
	for _, d := range p.Days {
		if !weekdays[strings.ToUpper(d)] {
			c.add("pollingStrategies.%d.days must contain only MON, TUE, WED, THU, FRI, SAT, SUN", i)
			break
		}
	}
	if p.Timezone != "" {
		if _, err := time.LoadLocation(p.Timezone); err != nil {
			c.add("pollingStrategies.%d.timezone is not a known time zone", i)
		}
	}
	if !(p.PollingInterval >= minInterval) {
		c.add("pollingStrategies.%d.pollingInterval must be a number of seconds not less than %g", i, minInterval)
	}
}

// required reports members that must be present and non-empty.
func (c *checker) required(cfg *streamConfig, create bool) {
	if !create {
		return
	}
	if cfg.Name == "" {
		c.add("name should not be empty")
	}
	if cfg.URL == "" {
		c.add("url should not be empty")
	}
}

func checkUpstreamURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("must be an absolute http or https URL")
	}
	return nil
}

// withDefaults fills the members a stream may omit.
func (cfg *streamConfig) withDefaults(o *Options) {
	if cfg.Method == "" {
		cfg.Method = client.MethodGet
	}
	if cfg.Status == "" {
		cfg.Status = client.StatusActive
	}
	if cfg.PayloadMode == "" {
		cfg.PayloadMode = client.PayloadFullData
	}
	if cfg.PollingInterval == 0 {
		cfg.PollingInterval = o.DefaultPollingInterval
	}
	if cfg.Headers == nil {
		cfg.Headers = map[string]string{}
	}
}

// interval returns the polling interval in effect at now: that of the first
// polling strategy whose window contains now, else the stream's own.
func (cfg *streamConfig) interval(now time.Time) time.Duration {
	sec := cfg.PollingInterval
	for _, p := range cfg.PollingStrategies {
		if strategyContains(p, now) {
			sec = p.PollingInterval
			break
		}
	}
	return time.Duration(sec * float64(time.Second))
}

// strategyContains reports whether p's window contains now.
func strategyContains(p client.PollingStrategy, now time.Time) bool {
	loc := time.UTC
	if p.Timezone != "" {
		l, err := time.LoadLocation(p.Timezone)
		if err != nil {
			return false
		}
		loc = l
	}
	t := now.In(loc)
	if len(p.Days) > 0 {
		day := strings.ToUpper(t.Weekday().String()[:3])
		found := false
		for _, d := range p.Days {
			if strings.ToUpper(d) == day {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	start, err1 := time.Parse("15:04", p.Start)
	end, err2 := time.Parse("15:04", p.End)
	if err1 != nil || err2 != nil {
		return false
	}
	m := t.Hour()*60 + t.Minute()
	s, e := start.Hour()*60+start.Minute(), end.Hour()*60+end.Minute()
	if s <= e {
		return m >= s && m < e
	}
	return m >= s || m < e // a window across midnight
}
