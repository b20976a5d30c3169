package emulator

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
)

// errUpstreamRefused is the error of a poll whose URL (or a redirect's) is
// not an allowed upstream.
var errUpstreamRefused = errors.New("upstream not allowed")

// maxRedirects bounds the redirects one poll follows.
const maxRedirects = 10

// checkAllowUpstream checks the patterns of Options.AllowUpstream.
func checkAllowUpstream(patterns []string) error {
	for _, p := range patterns {
		host, port := splitPattern(p)
		if host == "" || strings.ContainsAny(host, "/@?# ") || (port != "" && port != "*" && !allDigits(port)) {
			return fmt.Errorf("allow upstream %q: want host, host:port, *.domain or [ipv6]:port (port may be *)", p)
		}
	}
	return nil
}

func allDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}

// splitPattern splits host[:port] (an IPv6 host in brackets).
func splitPattern(p string) (host, port string) {
	p = strings.ToLower(strings.TrimSpace(p))
	if h, pt, err := net.SplitHostPort(p); err == nil {
		return strings.Trim(h, "[]"), pt
	}
	return strings.Trim(p, "[]"), ""
}

// matchUpstream reports whether host:port matches pattern: "*" is any
// host, "*.example.com" any host under example.com, a pattern without a
// port any port.
func matchUpstream(pattern, host, port string) bool {
	ph, pp := splitPattern(pattern)
	if pp != "" && pp != "*" && pp != port {
		return false
	}
	host = strings.ToLower(host)
	switch {
	case ph == "*" || ph == host:
		return true
	case strings.HasPrefix(ph, "*."):
		return strings.HasSuffix(host, ph[1:])
	}
	return false
}

// urlPort returns u's port, or its scheme's default.
func urlPort(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	if u.Scheme == "https" {
		return "443"
	}
	return "80"
}

// ownPort is the port the emulator listens on ("" before Start).
func (e *Emulator) ownPort() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.url == "" {
		return ""
	}
	u, err := url.Parse(e.url)
	if err != nil {
		return ""
	}
	return u.Port()
}

// isOwnAddress reports whether a connection to ip:port reaches the
// emulator itself: its port on a loopback, unspecified or local address.
func (e *Emulator) isOwnAddress(ip net.IP, port string) bool {
	own := e.ownPort()
	if own == "" || port != own || ip == nil {
		return false
	}
	if ip.IsLoopback() || ip.IsUnspecified() {
		return true
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return true // cannot tell: refuse
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.Equal(ip) {
			return true
		}
	}
	return false
}

// isOwnURL reports whether u names the emulator's own address (by its host:
// localhost or an address of this machine, and its port).
func (e *Emulator) isOwnURL(u *url.URL) bool {
	host := strings.ToLower(u.Hostname())
	port := urlPort(u)
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return port == e.ownPort()
	}
	return e.isOwnAddress(net.ParseIP(host), port)
}

// upstreamAllowed reports why the emulator must not fetch u, nil when it
// may: never its own address, and, with Options.AllowUpstream, only a host
// the list names.
func (e *Emulator) upstreamAllowed(u *url.URL) error {
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%w: %s is not an http or https URL", errUpstreamRefused, u.Redacted())
	}
	if e.isOwnURL(u) {
		return fmt.Errorf("%w: %s is the emulator's own address", errUpstreamRefused, u.Host)
	}
	if len(e.opts.AllowUpstream) == 0 {
		return nil
	}
	for _, p := range e.opts.AllowUpstream {
		if matchUpstream(p, u.Hostname(), urlPort(u)) {
			return nil
		}
	}
	return fmt.Errorf("%w: %s is not in the allowed upstreams (--allow-upstream)", errUpstreamRefused, u.Host)
}

// upstreamClient returns the client polls use: Options.HTTPClient whose
// redirects are checked like the first URL, and whose connections (when its
// transport is an *http.Transport, the default) never reach the emulator's
// own address, whatever a host name resolves to.
func (e *Emulator) upstreamClient(base *http.Client) *http.Client {
	c := *base
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= maxRedirects {
			return fmt.Errorf("stopped after %d redirects", maxRedirects)
		}
		if err := e.upstreamAllowed(req.URL); err != nil {
			return fmt.Errorf("redirect refused: %w", err)
		}
		if base.CheckRedirect != nil {
			return base.CheckRedirect(req, via)
		}
		return nil
	}
	var t *http.Transport
	switch rt := base.Transport.(type) {
	case nil:
		t = http.DefaultTransport.(*http.Transport).Clone()
	case *http.Transport:
		t = rt.Clone()
	default:
		return &c
	}
	d := &net.Dialer{Control: func(_, address string, _ syscall.RawConn) error {
		host, port, err := net.SplitHostPort(address)
		if err != nil {
			return err
		}
		if e.isOwnAddress(net.ParseIP(host), port) {
			return fmt.Errorf("%w: %s is the emulator's own address", errUpstreamRefused, address)
		}
		return nil
	}}
	t.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		return d.DialContext(ctx, network, addr)
	}
	c.Transport = t
	return &c
}
