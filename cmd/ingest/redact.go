package main

import (
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"sync"

	"github.com/restless-stream/ingest"
)

// The secrets of the loaded configuration, so that text from anywhere (a library's
// error, a panic) can be scrubbed before it is printed or logged.
var (
	secretsMu sync.RWMutex
	replacer  *strings.Replacer
	secretSet = map[string]bool{}
)

// minSecretLen keeps tiny values from blanking out ordinary text.
const minSecretLen = 4

// minSecretPrefix is the shortest start of a secret that is redacted on its
// own: text cut in the middle of a secret (an error body quoted up to a
// limit) must not show half of it.
const minSecretPrefix = 8

// redacted replaces every secret.
const redacted = "[REDACTED]"

// registerSecrets remembers secret values for redactText.
func registerSecrets(secrets ...ingest.Secret) {
	secretsMu.Lock()
	defer secretsMu.Unlock()
	for _, s := range secrets {
		if v := s.Reveal(); len(v) >= minSecretLen {
			secretSet[v] = true
		}
	}
	vals := make([]string, 0, len(secretSet))
	for v := range secretSet {
		vals = append(vals, v)
	}
	// Longest first, so a secret that contains another is replaced whole.
	sort.Slice(vals, func(i, j int) bool { return len(vals[i]) > len(vals[j]) })
	var pairs []string
	for _, v := range vals {
		pairs = append(pairs, v, redacted)
		if len(v) > minSecretPrefix {
			prefixes = append(prefixes, v)
		}
	}
	replacer = strings.NewReplacer(pairs...)
}

// prefixes are the registered secrets long enough to have their start
// redacted on its own (secretsMu).
var prefixes []string

// Credentials that may be anywhere in text, registered or not: the
// userinfo of a URL, the value of a credential-like query parameter (also
// inside a percent-encoded URL, such as a direct stream's upstream URL
// passed as a parameter), and an Authorization scheme's token.
var (
	userinfoRe    = regexp.MustCompile(`(?i)([a-z][a-z0-9+.-]*://)[^/?#@\s"'<>]+@`)
	encUserinfoRe = regexp.MustCompile(`(?i)(%3A%2F%2F)(?:[^%/?#&\s"'<>]|%(?:[0-35-9A-F][0-9A-F]|4[1-9A-F]))+%40`)
	queryCredRe   = regexp.MustCompile(`(?i)((?:^|[?&;]|%3F|%26|%3B)` + credParam + `(?:=|%3D))(?:[^&;%\s"'<>]|%(?:[013-9A-F][0-9A-F]|2[0-57-9A-F]))*`)
	bearerRe      = regexp.MustCompile(`(?i)\b(bearer|basic|token)(\s+)[A-Za-z0-9._~+/=-]{4,}`)
)

// credParam names the query parameters whose values are secrets.
const credParam = `(?:(?:access|refresh|id|auth|api|session)[_-]?token|token|api[_-]?key|apikey|key|client[_-]?secret|secret|password|passwd|pwd|signature|sig|auth|authorization|credentials?|x-api-key)`

// redactText replaces every registered secret in s, any start of one at
// least minSecretPrefix long, URL userinfo, credential-like query
// parameters and Authorization tokens. Text is redacted before anything
// cuts it to a length: redact, then truncate.
func redactText(s string) string {
	secretsMu.RLock()
	r, ps := replacer, prefixes
	secretsMu.RUnlock()
	if r != nil {
		s = r.Replace(s)
	}
	for _, p := range ps {
		s = redactPrefixes(s, p)
	}
	s = userinfoRe.ReplaceAllString(s, "${1}"+redacted+"@")
	s = encUserinfoRe.ReplaceAllString(s, "${1}"+redacted+"%40")
	s = queryCredRe.ReplaceAllString(s, "${1}"+redacted)
	s = bearerRe.ReplaceAllString(s, "${1}${2}"+redacted)
	return s
}

// redactPrefixes replaces each run of s that is the start of secret, at
// least minSecretPrefix long (the whole secret is already replaced).
func redactPrefixes(s, secret string) string {
	head := secret[:minSecretPrefix]
	i := strings.Index(s, head)
	if i < 0 {
		return s
	}
	var b strings.Builder
	for i >= 0 {
		n := minSecretPrefix
		for i+n < len(s) && n < len(secret) && s[i+n] == secret[n] {
			n++
		}
		b.WriteString(s[:i])
		b.WriteString(redacted)
		s = s[i+n:]
		i = strings.Index(s, head)
	}
	b.WriteString(s)
	return b.String()
}

// truncateRedacted redacts s, then cuts it to at most n bytes (on a rune
// boundary), marking the cut: a secret is never cut before it is redacted.
func truncateRedacted(s string, n int) string {
	s = redactText(s)
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }

// urlSecrets returns the secrets inside a configured URL: the userinfo
// password (and user), and the values of credential-like query parameters.
func urlSecrets(raw string) []ingest.Secret {
	u, err := url.Parse(raw)
	if err != nil {
		return nil
	}
	var out []ingest.Secret
	if u.User != nil {
		out = append(out, ingest.Secret(u.User.Username()))
		if p, ok := u.User.Password(); ok {
			out = append(out, ingest.Secret(p))
		}
	}
	for k, vs := range u.Query() {
		if credParamRe.MatchString(k) {
			for _, v := range vs {
				out = append(out, ingest.Secret(v))
			}
		}
	}
	return out
}

var credParamRe = regexp.MustCompile(`(?i)^` + credParam + `$`)

// plainHeaders are request headers whose values are not credentials; every
// other header value of a direct stream is a secret.
var plainHeaders = map[string]bool{
	"Accept": true, "Accept-Encoding": true, "Accept-Language": true, "Content-Type": true,
	"User-Agent": true, "Cache-Control": true,
}

// secrets lists every secret of the configuration.
func (c *Config) secrets() []ingest.Secret {
	out := []ingest.Secret{c.Restless.APIKey, c.Sink.NATS.Token, c.Sink.Kafka.SASL.Password}
	out = append(out, urlSecrets(c.Restless.BaseURL)...)
	out = append(out, urlSecrets(c.Restless.StreamBaseURL)...)
	for _, s := range c.Streams {
		out = append(out, s.Verify.Secrets...)
		out = append(out, urlSecrets(s.URL)...)
		if d := s.Direct; d != nil {
			out = append(out, urlSecrets(d.URL)...)
			for k, v := range d.Headers {
				if !plainHeaders[http.CanonicalHeaderKey(k)] {
					out = append(out, ingest.Secret(v))
				}
			}
		}
	}
	out = append(out, c.Discover.Verify.Secrets...)
	return out
}
