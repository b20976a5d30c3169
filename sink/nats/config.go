package nats

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/restless-stream/ingest"
)

// Defaults of Config.
const (
	DefaultURL             = "nats://127.0.0.1:4222"
	DefaultStream          = "RESTLESS"
	DefaultSubject         = "restless.>"
	DefaultDuplicateWindow = 10 * time.Minute
	DefaultMaxPending      = 4096
	DefaultAckTimeout      = 30 * time.Second
	DefaultReconnectWait   = 2 * time.Second
	DefaultConnectTimeout  = 5 * time.Second
	DefaultName            = "restless-ingest"
	DefaultReplicas        = 1
	// MaxReplicas is the most replicas JetStream gives a stream.
	MaxReplicas = 5
)

// Config configures a Sink. The zero value of a field selects its default,
// and the zero Config publishes to JetStream on DefaultURL.
type Config struct {
	// URLs are the servers to connect to; the client picks one and fails
	// over to the others. Each is a URL with a scheme and a host, such as
	// nats://127.0.0.1:4222. Default [DefaultURL].
	URLs []string
	// Core selects core NATS publish: no acknowledgement, no persistence
	// (see the package documentation). Default false: JetStream publish,
	// acknowledged by the stream.
	Core bool
	// Stream is the JetStream stream that stores the records. Default
	// "RESTLESS". Unused with Core.
	Stream string
	// BaseSubject is the wildcard subject the stream always has. Default
	// "restless.>", which covers every default destination. Unused with
	// Core.
	BaseSubject string
	// Subjects are added to the stream's subjects besides BaseSubject:
	// the daemon passes every destination. Subjects already matched by
	// another one (such as "restless.orders" by "restless.>") are not added
	// again, since NATS rejects overlapping subjects in one stream. Unused
	// with Core.
	Subjects []string
	// DuplicateWindow is how long the server remembers Nats-Msg-Id values.
	// Default 10m. Unused with Core.
	DuplicateWindow time.Duration
	// Replicas is the number of replicas of the stream New creates, 1 to
	// 5 (a JetStream cluster keeps that many copies, and stores a record
	// once a majority has it). An existing stream with fewer replicas is an
	// error; one with more is fine. Default 1. Unused with Core.
	Replicas int
	// Token authenticates with a token. Default none.
	Token ingest.Secret
	// CredentialsFile is a NATS credentials file (JWT and NKey seed).
	// Default none.
	CredentialsFile string
	// TLS configures TLS; it is used when any of its files is set or a URL
	// has the tls:// scheme. Default none.
	TLS TLSConfig
	// MaxPending bounds the acknowledgements outstanding on the connection,
	// across all concurrent Writes. Default 4096. Unused with Core.
	MaxPending int
	// AckTimeout bounds the wait for one record's acknowledgement (and, with
	// Core, for the flush), and for a free slot under MaxPending, when the
	// context of Write has no earlier deadline. Default 30s.
	AckTimeout time.Duration
	// ReconnectWait is the pause between reconnect attempts. Default 2s.
	// Reconnect attempts never stop.
	ReconnectWait time.Duration
	// ReconnectBufSize is how many bytes of publishes the client holds while
	// disconnected. Default 8 MiB (the client's default); -1 disables the
	// buffer, so publishes fail at once while disconnected.
	ReconnectBufSize int
	// ConnectTimeout bounds the first connection. Default 5s.
	ConnectTimeout time.Duration
	// Name is the connection name shown by the server. Default
	// "restless-ingest".
	Name string
	// OnState, when set, is called on every connection change:
	// StateReconnecting (with the cause) when the connection drops,
	// StateConnected when it is back, StateFailed when the client gives up
	// (never, unless the server rejects the credentials). It runs on the
	// client's callback goroutine and must not block. Default none.
	OnState func(ingest.StateChange)
}

// TLSConfig names the files of a TLS configuration.
type TLSConfig struct {
	// CAFile is a PEM bundle of the CAs that sign the server certificate.
	// Default: the system roots.
	CAFile string
	// CertFile and KeyFile are the client certificate and its key, for
	// mutual TLS. Both or neither. Default none.
	CertFile string
	KeyFile  string
}

func (t TLSConfig) enabled() bool { return t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" }

// Validate reports what is wrong with c as *ingest.FieldErrors joined with
// errors.Join; see Config.Validate.
func (t TLSConfig) Validate() error {
	switch {
	case t.CertFile != "" && t.KeyFile == "":
		return ingest.FieldErrorf("KeyFile", "required with a client certificate")
	case t.CertFile == "" && t.KeyFile != "":
		return ingest.FieldErrorf("CertFile", "required with a client key")
	}
	return nil
}

// Validate reports every field of c that New would refuse, each as an
// *ingest.FieldError naming the field by its Go path ("URLs[1]",
// "TLS.KeyFile"), joined with errors.Join. It does no I/O. The fields that
// Core leaves unused are checked only without Core.
func (c Config) Validate() error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, ingest.FieldErrorf(field, format, args...))
	}
	for i, u := range c.URLs {
		if pu, err := url.Parse(strings.TrimSpace(u)); err != nil || pu.Host == "" {
			add(fmt.Sprintf("URLs[%d]", i), "%q is not a NATS URL (e.g. nats://127.0.0.1:4222)", redactURL(u))
		}
	}
	if !c.Core {
		if err := validStreamName(c.Stream); err != nil {
			errs = append(errs, &ingest.FieldError{Field: "Stream", Err: err})
		}
		if c.BaseSubject != "" {
			if err := validSubject(c.BaseSubject, true); err != nil {
				errs = append(errs, &ingest.FieldError{Field: "BaseSubject", Err: err})
			}
		}
		for i, s := range c.Subjects {
			if err := validSubject(s, true); err != nil {
				errs = append(errs, &ingest.FieldError{Field: fmt.Sprintf("Subjects[%d]", i), Err: err})
			}
		}
		if c.DuplicateWindow < 0 {
			add("DuplicateWindow", "%v is negative", c.DuplicateWindow)
		}
		if c.Replicas < 0 || c.Replicas > MaxReplicas {
			add("Replicas", "%d is not a number of stream replicas (1 to %d)", c.Replicas, MaxReplicas)
		}
		if c.MaxPending < 0 {
			add("MaxPending", "%d is negative", c.MaxPending)
		}
	}
	for _, f := range []struct {
		name string
		v    time.Duration
	}{
		{"AckTimeout", c.AckTimeout},
		{"ReconnectWait", c.ReconnectWait},
		{"ConnectTimeout", c.ConnectTimeout},
	} {
		if f.v < 0 {
			add(f.name, "%v is negative", f.v)
		}
	}
	if c.ReconnectBufSize < -1 {
		add("ReconnectBufSize", "%d is below -1", c.ReconnectBufSize)
	}
	errs = append(errs, ingest.Prefix("TLS", c.TLS.Validate()))
	return errors.Join(errs...)
}

// withDefaults returns c with every zero field set to its default; c must
// be valid.
func (c Config) withDefaults() Config {
	if len(c.URLs) == 0 {
		c.URLs = []string{DefaultURL}
	}
	c.URLs = append([]string(nil), c.URLs...)
	if c.Stream == "" {
		c.Stream = DefaultStream
	}
	if c.BaseSubject == "" {
		c.BaseSubject = DefaultSubject
	}
	c.Subjects = append([]string(nil), c.Subjects...)
	if c.DuplicateWindow == 0 {
		c.DuplicateWindow = DefaultDuplicateWindow
	}
	if c.Replicas == 0 {
		c.Replicas = DefaultReplicas
	}
	if c.MaxPending == 0 {
		c.MaxPending = DefaultMaxPending
	}
	if c.AckTimeout == 0 {
		c.AckTimeout = DefaultAckTimeout
	}
	if c.ReconnectWait == 0 {
		c.ReconnectWait = DefaultReconnectWait
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
	if c.Name == "" {
		c.Name = DefaultName
	}
	return c
}

// redactURLs lists the server URLs without user information.
func redactURLs(urls []string) string {
	out := make([]string, len(urls))
	for i, raw := range urls {
		out[i] = redactURL(raw)
	}
	return strings.Join(out, ",")
}

// redactURL is raw without its user information.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		if strings.Contains(raw, "@") {
			return "[url with credentials]"
		}
		return raw
	}
	u.User = url.User("REDACTED")
	return u.String()
}
