package nats

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/restless-stream/ingest"
	"github.com/restless-stream/ingest/internal/fielderr"
)

// TestValidate: each mistake is reported as a FieldError at its Go path,
// all of them at once, and New refuses the configuration with them; the
// fields that core NATS does not use are not checked with Core.
func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		cfg    Config
		fields []string
	}{
		{"zero", Config{}, nil},
		{"replicas", Config{Replicas: MaxReplicas + 1}, []string{"Replicas"}},
		{"negative replicas", Config{Replicas: -1}, []string{"Replicas"}},
		{"urls", Config{URLs: []string{"nats://127.0.0.1:4222", " ", "127.0.0.1:4222", "nats://u:hunter2@"}}, []string{"URLs[1]", "URLs[2]", "URLs[3]"}},
		{"bad stream name", Config{Stream: "a.b"}, []string{"Stream"}},
		{"bad subject", Config{Subjects: []string{"ok.>", "a..b"}}, []string{"Subjects[1]"}},
		{"bad base subject", Config{BaseSubject: "a.>.b"}, []string{"BaseSubject"}},
		{"negative window", Config{DuplicateWindow: -time.Second}, []string{"DuplicateWindow"}},
		{"negative pending", Config{MaxPending: -1}, []string{"MaxPending"}},
		{"core ignores the stream", Config{Core: true, Stream: "a.b", BaseSubject: "a..b", DuplicateWindow: -1, MaxPending: -1}, nil},
		{"negative timeouts", Config{AckTimeout: -1, ReconnectWait: -1, ConnectTimeout: -1}, []string{"AckTimeout", "ReconnectWait", "ConnectTimeout"}},
		{"reconnect buffer", Config{ReconnectBufSize: -2}, []string{"ReconnectBufSize"}},
		{"cert without key", Config{TLS: TLSConfig{CertFile: "c.pem"}}, []string{"TLS.KeyFile"}},
		{"key without cert", Config{TLS: TLSConfig{KeyFile: "k.pem"}}, []string{"TLS.CertFile"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if got, others := fielderr.Fields(err); !slices.Equal(got, tt.fields) || others != nil {
				t.Fatalf("Validate() fields %q, want %q: %v", got, tt.fields, err)
			}
			if err == nil {
				return
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("error leaks the password: %v", err)
			}
			s, nerr := New(context.Background(), tt.cfg)
			if nerr == nil {
				s.Close(context.Background())
				t.Fatal("New accepted an invalid configuration")
			}
			if got, others := fielderr.Fields(nerr); !slices.Equal(got, tt.fields) || others != nil {
				t.Fatalf("New error fields %q, want %q: %v", got, tt.fields, nerr)
			}
		})
	}
}

// TestNewErrors: what New finds beyond Validate names the servers, never
// their credentials.
func TestNewErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no server", Config{URLs: []string{"nats://u:hunter2@127.0.0.1:1"}, ConnectTimeout: time.Second}, "connect to nats://REDACTED@127.0.0.1:1"},
		{"missing credentials file", Config{URLs: []string{"nats://127.0.0.1:1"}, CredentialsFile: "/nonexistent/creds"}, "connect"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New(context.Background(), tt.cfg)
			if err == nil {
				s.Close(context.Background())
				t.Fatal("New succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not contain %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("error leaks the password: %v", err)
			}
		})
	}
}

func TestStreamSubjects(t *testing.T) {
	tests := []struct {
		extra []string
		want  []string
	}{
		{nil, []string{"restless.>"}},
		{[]string{"restless.orders", "restless.a.b"}, []string{"restless.>"}},
		{[]string{"dlq", "dlq", "restless.x"}, []string{"restless.>", "dlq"}},
		{[]string{"other.one", "other.*", "other.>"}, []string{"restless.>", "other.>"}},
		{[]string{"a.*.c", "a.b.c", "a.b"}, []string{"restless.>", "a.*.c", "a.b"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.extra, ","), func(t *testing.T) {
			if got := streamSubjects(DefaultSubject, tt.extra); !slices.Equal(got, tt.want) {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestSubjectCovers(t *testing.T) {
	tests := []struct {
		p, s string
		want bool
	}{
		{"a.>", "a.b", true},
		{"a.>", "a.b.c", true},
		{"a.>", "a", false},
		{"a.>", "a.*", true},
		{"a.*", "a.b", true},
		{"a.*", "a.>", false},
		{"a.*", "a.b.c", false},
		{"a.b", "a.b", true},
		{"a.b", "a.c", false},
		{"a.b", "a.b.c", false},
		{"*.b", "a.b", true},
		{">", "x", true},
	}
	for _, tt := range tests {
		if got := subjectCovers(tt.p, tt.s); got != tt.want {
			t.Errorf("subjectCovers(%q, %q) = %v, want %v", tt.p, tt.s, got, tt.want)
		}
	}
}

func TestValidSubject(t *testing.T) {
	tests := []struct {
		s         string
		wildcards bool
		ok        bool
	}{
		{"restless.orders", false, true},
		{"a", false, true},
		{"", false, false},
		{"a..b", false, false},
		{".a", false, false},
		{"a.", false, false},
		{"a b", false, false},
		{"a.*", false, false},
		{"a.>", false, false},
		{"a.*", true, true},
		{"a.>", true, true},
		{"a.>.b", true, false},
		{"a\tb", true, false},
	}
	for _, tt := range tests {
		err := validSubject(tt.s, tt.wildcards)
		if (err == nil) != tt.ok || (err != nil && !strings.Contains(err.Error(), "NATS subject")) {
			t.Errorf("validSubject(%q, %v) = %v", tt.s, tt.wildcards, err)
		}
		if !tt.wildcards && (ValidSubject(tt.s) == nil) != tt.ok {
			t.Errorf("ValidSubject(%q) = %v", tt.s, ValidSubject(tt.s))
		}
	}
}

func TestJetStreamWriteAndDuplicates(t *testing.T) {
	url := sharedServer(t)
	cfg, base := testConfig(t, url)
	s := newSink(t, cfg)
	ctx := context.Background()
	recs := records(base+".orders", "orders", 1, 100)
	// A header repeated keeps both values.
	recs[0].Headers = append(recs[0].Headers, ingest.Header{Key: "restless-stream", Value: "again"})
	// No MsgID: no Nats-Msg-Id header.
	recs[1].MsgID = ""
	if err := s.Write(ctx, recs); err != nil {
		t.Fatal(err)
	}
	if !s.Connected() {
		t.Fatal("not connected")
	}
	msgs := storedMsgs(t, s)
	if len(msgs) != len(recs) {
		t.Fatalf("stream has %d messages, want %d", len(msgs), len(recs))
	}
	for i, m := range msgs {
		r := recs[i]
		if m.Subject != r.Dest || string(m.Data) != string(r.Value) {
			t.Fatalf("message %d: %s %s", i, m.Subject, m.Data)
		}
		for _, h := range r.Headers[:6] {
			if got := m.Header.Get(h.Key); got != h.Value {
				t.Errorf("message %d header %s = %q, want %q", i, h.Key, got, h.Value)
			}
		}
		if got := m.Header.Get(jetstream.MsgIDHeader); got != r.MsgID {
			t.Errorf("message %d Nats-Msg-Id = %q, want %q", i, got, r.MsgID)
		}
	}
	if got := msgs[0].Header.Values("restless-stream"); !slices.Equal(got, []string{"orders", "again"}) {
		t.Errorf("repeated header = %q", got)
	}
	if _, ok := msgs[1].Header[jetstream.MsgIDHeader]; ok {
		t.Error("Nats-Msg-Id set for a record without MsgID")
	}
	if s.Duplicates() != 0 {
		t.Fatalf("Duplicates = %d before any resend", s.Duplicates())
	}

	// Resending the batch stores nothing new: the server drops repeats. (The
	// record without MsgID is stored again, after the repeat of the record
	// before it, which its fence did not expect: it is refused once and
	// resent, as the pipeline does.)
	var up atomic.Bool
	up.Store(true)
	if err := writeRetrying(ctx, s, recs, &up, new(atomic.Int32)); err != nil {
		t.Fatal(err)
	}
	if got := s.Duplicates(); got != uint64(len(recs)-1) {
		t.Fatalf("Duplicates = %d, want %d", got, len(recs)-1)
	}
	if n := len(storedMsgs(t, s)); n != len(recs)+1 {
		t.Fatalf("stream has %d messages after resend, want %d (only the record without MsgID repeats)", n, len(recs)+1)
	}
}

func TestConcurrentWrites(t *testing.T) {
	url := sharedServer(t)
	cfg, base := testConfig(t, url)
	cfg.MaxPending = 16 // smaller than a batch: publishes wait for free slots
	s := newSink(t, cfg)
	var wg sync.WaitGroup
	for lane := range 4 {
		wg.Go(func() {
			recs := records(fmt.Sprintf("%s.lane%d", base, lane), fmt.Sprint("lane", lane), 0, 50)
			if err := s.Write(context.Background(), recs); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := len(storedMsgs(t, s)); n != 200 {
		t.Fatalf("stream has %d messages, want 200", n)
	}
}

func TestWriteRecordErrors(t *testing.T) {
	url := sharedServer(t)
	cfg, base := testConfig(t, url)
	s := newSink(t, cfg)
	recs := records(base+".ok", "s", 0, 4)
	recs[1].Dest = ""
	recs[2].Dest = base + ".*"
	recs[3].Dest = "nostream" + uniqueID(t) // no stream listens here
	err := s.Write(context.Background(), recs)
	var werr ingest.WriteErrors
	if !errors.As(err, &werr) {
		t.Fatalf("Write = %v, want WriteErrors", err)
	}
	if len(werr) != 4 || werr[0] != nil {
		t.Fatalf("WriteErrors = %v", werr)
	}
	for _, i := range []int{1, 2} {
		if !ingest.IsPermanent(werr[i]) {
			t.Errorf("record %d: %v is not permanent", i, werr[i])
		}
	}
	if !strings.Contains(werr[3].Error(), recs[3].Dest) || !errors.Is(werr[3], jetstream.ErrNoStreamResponse) {
		t.Errorf("record 3: %v", werr[3])
	}
	if n := len(storedMsgs(t, s)); n != 1 {
		t.Fatalf("stream has %d messages, want 1", n)
	}
}

func TestWriteCanceled(t *testing.T) {
	url := sharedServer(t)
	cfg, base := testConfig(t, url)
	s := newSink(t, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := s.Write(ctx, records(base+".x", "s", 0, 3))
	var werr ingest.WriteErrors
	if !errors.As(err, &werr) || werr.Count() != 3 || !errors.Is(werr[0], context.Canceled) {
		t.Fatalf("Write = %v", err)
	}
}

func TestEnsureStream(t *testing.T) {
	url := sharedServer(t)
	cfg, base := testConfig(t, url)
	cfg.Subjects = []string{base + ".orders", "x" + base + ".dlq"}

	// Missing: created with the configured settings.
	s := newSink(t, cfg)
	info, err := s.JetStream().Stream(context.Background(), cfg.Stream)
	if err != nil {
		t.Fatal(err)
	}
	got := info.CachedInfo().Config
	if want := []string{base + ".>", "x" + base + ".dlq"}; !slices.Equal(got.Subjects, want) {
		t.Errorf("subjects %q, want %q", got.Subjects, want)
	}
	if got.Duplicates != DefaultDuplicateWindow || got.Storage != jetstream.FileStorage {
		t.Errorf("duplicates %v storage %v", got.Duplicates, got.Storage)
	}
	s.Close(context.Background())

	// Existing with the same settings: accepted, also with fewer extras.
	cfg2 := cfg
	cfg2.Subjects = nil
	newSink(t, cfg2).Close(context.Background())

	// Existing with other settings: an error naming each difference, and
	// the stream is left as it was.
	cfg3 := cfg
	cfg3.DuplicateWindow = time.Minute
	cfg3.Subjects = []string{"y" + base + ".new"}
	_, err = New(context.Background(), cfg3)
	if err == nil {
		t.Fatal("New accepted a stream with other settings")
	}
	for _, want := range []string{"y" + base + ".new", "duplicate_window is 10m0s on the stream, 1m0s configured", "left unchanged"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	info, err = s2js(t, url).Stream(context.Background(), cfg.Stream)
	if err != nil {
		t.Fatal(err)
	}
	if c := info.CachedInfo().Config; c.Duplicates != DefaultDuplicateWindow || len(c.Subjects) != 2 {
		t.Fatalf("stream changed: %+v", c)
	}
}

func s2js(t *testing.T, url string) jetstream.JetStream {
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

func TestCoreWrite(t *testing.T) {
	url := sharedServer(t)
	base := "core" + uniqueID(t)
	s := newSink(t, Config{URLs: []string{url}, Core: true})
	if s.JetStream() != nil || s.Stream() != "" {
		t.Fatal("core sink has a JetStream context")
	}
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	sub, err := nc.SubscribeSync(base + ".>")
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	recs := records(base+".a", "a", 0, 10)
	recs = append(recs, ingest.Record{Dest: "bad subject", Value: []byte("x")})
	err = s.Write(context.Background(), recs)
	var werr ingest.WriteErrors
	if !errors.As(err, &werr) || werr.Count() != 1 || !ingest.IsPermanent(werr[10]) {
		t.Fatalf("Write = %v", err)
	}
	for i := range 10 {
		m, err := sub.NextMsg(5 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if string(m.Data) != string(recs[i].Value) || m.Header.Get("restless-event-id") != fmt.Sprint(i) || m.Header.Get(jetstream.MsgIDHeader) != recs[i].MsgID {
			t.Fatalf("message %d = %s %v", i, m.Data, m.Header)
		}
	}
}

// TestFailureStopsItsSubjectOnly: when a record fails, the Write's later
// records on its subject fail unsent (to be resent after it, in order),
// while its records on other subjects are stored; the next Write on the
// subject starts from what the stream holds.
func TestFailureStopsItsSubjectOnly(t *testing.T) {
	url := sharedServer(t)
	cfg, base := testConfig(t, url)
	s := newSink(t, cfg)
	nowhere := "nostream" + uniqueID(t) // no stream listens here
	ctx := context.Background()
	stored := func() int { return len(storedMsgs(t, s)) }

	// A record on a subject without stream fails; the two after it on
	// that subject are not sent; the two on the stream's subject are stored.
	recs := records(base+".ok", "s", 0, 5)
	for _, i := range []int{0, 2, 3} {
		recs[i].Dest = nowhere
	}
	err := s.Write(ctx, recs)
	var werr ingest.WriteErrors
	if !errors.As(err, &werr) || werr.Count() != 3 || werr[1] != nil || werr[4] != nil {
		t.Fatalf("Write = %v, want the 3 records on %s failed, the others stored", err, nowhere)
	}
	for _, i := range []int{0, 2, 3} {
		if ingest.IsPermanent(werr[i]) || !errors.Is(werr[i], jetstream.ErrNoStreamResponse) {
			t.Fatalf("record %d: %v, want a retryable 'no responders'", i, werr[i])
		}
	}
	if n := stored(); n != 2 {
		t.Fatalf("stored %d, want 2", n)
	}
	// The subject goes on from where it is.
	if err := s.Write(ctx, records(base+".ok", "s", 10, 3)); err != nil {
		t.Fatal(err)
	}
	if n := stored(); n != 5 {
		t.Fatalf("stored %d, want 5", n)
	}
	if n := s.FenceRefusals(); n != 0 {
		t.Fatalf("%d fence refusals, want 0", n)
	}
}

// TestReusedMessagesCarryOwnHeaders: message structures are reused once
// acknowledged, so batches with different headers (a repeated name, an
// extra name, none at all) written one after another, by several lanes at
// once, must each be stored with exactly their own headers and value.
func TestReusedMessagesCarryOwnHeaders(t *testing.T) {
	for _, core := range []bool{false, true} {
		t.Run(map[bool]string{false: "jetstream", true: "core"}[core], func(t *testing.T) {
			url := sharedServer(t)
			cfg, base := testConfig(t, url)
			s := newSink(t, cfg)
			type want struct {
				hdr   nats.Header
				value string
			}
			var mu sync.Mutex
			wants := map[string]want{} // by value
			var wg sync.WaitGroup
			for lane := range 3 {
				wg.Go(func() {
					for round := range 6 {
						recs := records(fmt.Sprintf("%s.l%d", base, lane), fmt.Sprint("l", lane), round*10, 10)
						for i := range recs {
							r := &recs[i]
							switch (round + i) % 3 {
							case 0:
								r.Headers = append(r.Headers, ingest.Header{Key: "x-extra", Value: fmt.Sprint(lane, round, i)},
									ingest.Header{Key: "x-extra", Value: "again"})
							case 1:
								r.Headers, r.MsgID = nil, ""
							}
							h := nats.Header{}
							for _, hd := range r.Headers {
								h.Add(hd.Key, hd.Value)
							}
							if r.MsgID != "" {
								h.Set(jetstream.MsgIDHeader, r.MsgID)
							}
							mu.Lock()
							wants[string(r.Value)+r.Dest] = want{h, string(r.Value)}
							mu.Unlock()
						}
						var err error
						if core {
							err = s.writeCore(context.Background(), recs)
						} else {
							err = s.Write(context.Background(), recs)
						}
						if err != nil {
							t.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			// The test's stream stores core publishes too, a moment after
			// the flush.
			got := storedMsgs(t, s)
			for deadline := time.Now().Add(5 * time.Second); len(got) < len(wants) && time.Now().Before(deadline); {
				time.Sleep(20 * time.Millisecond)
				got = storedMsgs(t, s)
			}
			if len(got) != len(wants) {
				t.Fatalf("stored %d messages, want %d", len(got), len(wants))
			}
			for _, m := range got {
				w, ok := wants[string(m.Data)+m.Subject]
				if !ok {
					t.Fatalf("unexpected message %q on %s", m.Data, m.Subject)
				}
				// The order fences (Nats-Expected-*) are stored too.
				maps.DeleteFunc(m.Header, func(k string, _ []string) bool { return strings.HasPrefix(k, "Nats-Expected-") })
				if len(m.Header) != len(w.hdr) {
					t.Fatalf("message %q: headers %v, want %v", m.Data, m.Header, w.hdr)
				}
				for k, vs := range w.hdr {
					if fmt.Sprint(m.Header.Values(k)) != fmt.Sprint(vs) {
						t.Fatalf("message %q: header %s = %v, want %v", m.Data, k, m.Header.Values(k), vs)
					}
				}
			}
		})
	}
}
