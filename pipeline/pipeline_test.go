package pipeline

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/restless-stream/ingest"
	"github.com/restless-stream/ingest/checkpoint"
	"github.com/restless-stream/ingest/client"
)

// TestDropRules sends, for each rule, a good event, the bad one, and a good
// one, and checks what was written, what was acknowledged and where the
// checkpoint stands — with and without a dead-letter destination.
func TestDropRules(t *testing.T) {
	big := event("2", padTo(3000))
	cases := []struct {
		name    string
		bad     ingest.Frame
		mode    VerifyMode
		max     int
		reason  string // "" = accepted
		dup     bool
		dlqBody []byte // expected dead-letter value; nil = the frame's bytes
		dlqID   string // expected restless-event-id of the dead-letter record
	}{
		{name: "duplicate", bad: frame(event("1")), dup: true},
		{name: "bad signature", bad: frame(event("2", badSig())), reason: ReasonSignatureInvalid, dlqID: "2"},
		{name: "undecodable signature", bad: frame(bytes.Replace(event("2"), []byte(`"signature":"`), []byte(`"signature":"zz`), 1)), reason: ReasonSignatureInvalid, dlqID: "2"},
		{name: "missing signature", bad: frame(event("2", unsigned())), reason: ReasonSignatureMissing, dlqID: "2"},
		{name: "signature not a string", bad: frame(bytes.Replace(event("2", unsigned()), []byte(`"error":null,`), []byte(`"error":null,"signature":42,`), 1)), reason: ReasonSignatureInvalid, dlqID: "2"},
		{name: "signature not a string, off", bad: frame(bytes.Replace(event("2", unsigned()), []byte(`"error":null,`), []byte(`"error":null,"signature":42,`), 1)), mode: VerifyOff},
		{name: "missing signature, optional", bad: frame(event("2", unsigned())), mode: VerifyOptional},
		{name: "bad signature, optional", bad: frame(event("2", badSig())), mode: VerifyOptional, reason: ReasonSignatureInvalid, dlqID: "2"},
		{name: "bad signature, off", bad: frame(event("2", badSig())), mode: VerifyOff},
		{name: "error event, unsigned", bad: frame(event("2", errorEvent()))},
		{name: "too large, cut by source", bad: ingest.Frame{Data: big[:1000], Cursor: "2", TooLarge: true}, reason: ReasonTooLarge, dlqBody: big[:1000]},
		{name: "too large, measured", bad: frame(big), max: 2000, reason: ReasonTooLarge, dlqBody: big[:2000]},
		{name: "unparsable", bad: ingest.Frame{Data: []byte(`{"type":"update","event_id":"2",`), Cursor: "2"}, reason: ReasonParseError, dlqID: "2"},
		{name: "not an event", bad: ingest.Frame{Data: []byte(`[1,2]`), Cursor: "2"}, reason: ReasonParseError},
		{name: "unknown type", bad: frame([]byte(`{"type":"ping","event_id":"2"}`)), reason: ReasonParseError, dlqID: "2"},
	}
	for _, c := range cases {
		for _, dlq := range []string{"", "restless.dlq"} {
			t.Run(fmt.Sprintf("%s/dlq=%q", c.name, dlq), func(t *testing.T) {
				src := &fakeSource{frames: []ingest.Frame{frame(event("1")), c.bad, frame(event("3"))}, end: ingest.ErrStreamEnded}
				cfg := testConfig(t, "orders", src)
				cfg.DeadLetter = dlq
				cfg.Streams[0].VerifyMode = c.mode
				if c.max > 0 {
					cfg.Streams[0].MaxEventBytes = c.max
				}
				sink, store, obs := &fakeSink{}, checkpoint.NewMemory(), newCounters()
				if err := mustNew(t, cfg, sink, store, obs).Run(t.Context()); err != nil {
					t.Fatal(err)
				}
				recs := sink.records()
				wantPub := idStrings(1, 3)
				if c.reason == "" && !c.dup {
					wantPub = idStrings(1, 2, 3)
				}
				if got := ids(recs, "restless.orders"); !equal(got, wantPub) {
					t.Errorf("published %v, want %v", got, wantPub)
				}
				var dl []ingest.Record
				for _, r := range recs {
					if r.Dest == "restless.dlq" {
						dl = append(dl, r)
					}
				}
				wantDL := 0
				if c.reason != "" && dlq != "" {
					wantDL = 1
				}
				if len(dl) != wantDL {
					t.Fatalf("%d dead-letter records, want %d", len(dl), wantDL)
				}
				if wantDL == 1 {
					r := dl[0]
					if got, _ := r.Header(HeaderDLQReason); got != c.reason {
						t.Errorf("reason %q, want %q", got, c.reason)
					}
					if msg, _ := r.Header(HeaderDLQError); msg == "" {
						t.Error("no restless-dlq-error")
					}
					if got, _ := r.Header(HeaderStream); got != "orders" || string(r.Key) != "orders" {
						t.Errorf("stream header %q, key %q", got, r.Key)
					}
					id, hasID := r.Header(HeaderEventID)
					if c.dlqID != "" && id != c.dlqID || c.dlqID == "" && c.dlqBody == nil && hasID {
						t.Errorf("dead-letter event id %q (present %v), want %q", id, hasID, c.dlqID)
					}
					want := c.dlqBody
					if want == nil {
						want = c.bad.Data
					}
					if !bytes.Equal(r.Value, want) {
						t.Errorf("dead-letter value is %d bytes %.40q…, want %d bytes", len(r.Value), r.Value, len(want))
					}
					if r.MsgID != "" {
						t.Errorf("dead-letter MsgID %q, want none", r.MsgID)
					}
				}
				if got := loadCursor(t, store, "orders"); got != "3" {
					t.Errorf("checkpoint %q, want 3", got)
				}
				if obs.received != 3 {
					t.Errorf("received %d, want 3", obs.received)
				}
				if c.reason != "" && (obs.rejected[c.reason] != 1 || obs.dlq != wantDL) {
					t.Errorf("rejected %v (dead-lettered %d), want one %s", obs.rejected, obs.dlq, c.reason)
				}
				if c.dup && obs.dup != 1 {
					t.Errorf("duplicates %d, want 1", obs.dup)
				}
				if obs.published != len(wantPub) {
					t.Errorf("published counter %d, want %d", obs.published, len(wantPub))
				}
			})
		}
	}
}

func TestRecordFormat(t *testing.T) {
	signed := event("7")
	errEv := event("8", errorEvent())
	anon := event("9", noID(), unsigned())
	for _, km := range []KeyMode{"", KeyStream, KeyEventID, KeyNone} {
		t.Run(string(km), func(t *testing.T) {
			src := &fakeSource{frames: []ingest.Frame{{Data: signed, Cursor: "7"}, {Data: errEv, Cursor: "8"}, {Data: anon, Cursor: "8"}}, end: ingest.ErrStreamEnded}
			cfg := testConfig(t, "orders", src)
			cfg.Streams[0].VerifyMode = VerifyOptional
			cfg.Streams[0].Destination = "orders.out"
			cfg.Streams[0].KeyMode = km
			sink, store, obs := &fakeSink{}, checkpoint.NewMemory(), newCounters()
			if err := mustNew(t, cfg, sink, store, obs).Run(t.Context()); err != nil {
				t.Fatal(err)
			}
			recs := sink.records()
			if len(recs) != 3 {
				t.Fatalf("%d records, want 3", len(recs))
			}
			r := recs[0]
			if &r.Value[0] != &signed[0] || len(r.Value) != len(signed) {
				t.Error("Value is not the frame's bytes (copied or changed)")
			}
			want := []ingest.Header{
				{Key: HeaderStream, Value: "orders"}, {Key: HeaderEventID, Value: "7"}, {Key: HeaderEventType, Value: "update"},
				{Key: HeaderTimestamp, Value: "2026-06-07T00:49:36.562+00:00"}, {Key: HeaderVerified, Value: "true"},
				{Key: HeaderContentType, Value: ContentTypeJSON},
			}
			if fmt.Sprint(r.Headers) != fmt.Sprint(want) {
				t.Errorf("headers %v, want %v", r.Headers, want)
			}
			if r.Dest != "orders.out" || r.MsgID != "orders:7" {
				t.Errorf("dest %q msgid %q", r.Dest, r.MsgID)
			}
			wantKey := map[KeyMode]string{"": "orders", KeyStream: "orders", KeyEventID: "7", KeyNone: ""}[km]
			if string(r.Key) != wantKey || (km == KeyNone) != (r.Key == nil) {
				t.Errorf("key %q, want %q", r.Key, wantKey)
			}
			if v, _ := recs[1].Header(HeaderVerified); v != "false" {
				t.Errorf("error event verified=%q, want false", v)
			}
			if typ, _ := recs[1].Header(HeaderEventType); typ != "error" {
				t.Errorf("error event type %q", typ)
			}
			a := recs[2]
			if _, ok := a.Header(HeaderEventID); ok || a.MsgID != "" {
				t.Errorf("event without id has id header or MsgID %q", a.MsgID)
			}
			if km == KeyEventID && string(a.Key) != "orders" {
				t.Errorf("event_id key of an event without id = %q, want the stream name", a.Key)
			}
			if obs.noID != 1 || obs.lags != 3 {
				t.Errorf("noID %d lags %d, want 1 and 3", obs.noID, obs.lags)
			}
			// The id-less event does not move the checkpoint past 8; its frame cursor is 8.
			if got := loadCursor(t, store, "orders"); got != "8" {
				t.Errorf("checkpoint %q, want 8", got)
			}
		})
	}
}

// TestNoEventIDsPassUndeduplicated: identical events without ids are all
// published.
func TestNoEventIDsPassUndeduplicated(t *testing.T) {
	b := event("1", noID())
	src := &fakeSource{frames: []ingest.Frame{{Data: b}, {Data: b}, {Data: b}}, end: ingest.ErrStreamEnded}
	sink, store, obs := &fakeSink{}, checkpoint.NewMemory(), newCounters()
	if err := mustNew(t, testConfig(t, "s", src), sink, store, obs).Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := len(sink.records()); n != 3 || obs.noID != 3 {
		t.Fatalf("%d records, %d counted without id; want 3, 3", n, obs.noID)
	}
	if _, ok, _ := store.Load(t.Context(), "s"); ok {
		t.Error("events without ids or cursors saved a checkpoint")
	}
}

// checkingStore fails the test when a checkpoint is saved before the sink
// acknowledged that event and every event before it (events are 1, 2, 3…).
type checkingStore struct {
	*checkpoint.Memory
	t    testing.TB
	sink *fakeSink
	dest string
}

func (s *checkingStore) Save(ctx context.Context, stream, cursor string) error {
	acked := map[string]bool{}
	for _, id := range ids(s.sink.records(), s.dest) {
		acked[id] = true
	}
	upTo, _ := strconv.Atoi(cursor)
	for i := 1; i <= upTo; i++ {
		if !acked[strconv.Itoa(i)] {
			s.t.Errorf("checkpoint %s saved before event %d was acknowledged", cursor, i)
			break
		}
	}
	return s.Memory.Save(ctx, stream, cursor)
}

// TestSinkFailsThenSucceeds: whole-batch failures, partial failures, then
// success: nothing lost, nothing reordered, checkpoint never early, failed
// ids never taken for duplicates.
func TestSinkFailsThenSucceeds(t *testing.T) {
	cases := []struct {
		name string
		fail func(call int, recs []ingest.Record) error
	}{
		{"whole batch", func(call int, _ []ingest.Record) error {
			if call <= 3 {
				return errors.New("broker down")
			}
			return nil
		}},
		{"suffix", func(call int, recs []ingest.Record) error {
			if call%2 == 1 && len(recs) > 1 {
				werrs := make(ingest.WriteErrors, len(recs))
				for i := len(recs) / 2; i < len(recs); i++ {
					werrs[i] = errors.New("timeout")
				}
				return werrs
			}
			return nil
		}},
		{"every other record", func(call int, recs []ingest.Record) error {
			if call <= 4 {
				werrs := make(ingest.WriteErrors, len(recs))
				for i := range recs {
					if i%2 == 0 {
						werrs[i] = errors.New("nack")
					}
				}
				return werrs
			}
			return nil
		}},
		{"misaligned WriteErrors", func(call int, recs []ingest.Record) error {
			if call <= 2 {
				return ingest.WriteErrors{errors.New("short")}
			}
			return nil
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				const n = 50
				src := &fakeSource{frames: frames(seq(1, n)...), end: ingest.ErrStreamEnded}
				sink := &fakeSink{fail: c.fail}
				store := &checkingStore{Memory: checkpoint.NewMemory(), t: t, sink: sink, dest: "restless.orders"}
				cfg := testConfig(t, "orders", src)
				cfg.Batch.MaxEvents = 8
				obs := newCounters()
				if err := mustNew(t, cfg, sink, store, obs).Run(t.Context()); err != nil {
					t.Fatal(err)
				}
				got := ids(sink.records(), "restless.orders")
				seen := map[string]int{}
				for _, id := range got {
					seen[id]++
				}
				for i := 1; i <= n; i++ {
					if seen[strconv.Itoa(i)] != 1 {
						t.Fatalf("event %d acknowledged %d times; got %v", i, seen[strconv.Itoa(i)], got)
					}
				}
				if c.name != "every other record" && !equal(got, idStrings(seq(1, n)...)) {
					t.Errorf("order %v", got)
				}
				if obs.writeFailed == 0 || obs.dup != 0 {
					t.Errorf("write failures %d, duplicates %d; want >0 and 0", obs.writeFailed, obs.dup)
				}
				if got := loadCursor(t, store, "orders"); got != strconv.Itoa(n) {
					t.Errorf("checkpoint %q, want %d", got, n)
				}
			})
		})
	}
}

// TestPartialFailureHoldsCheckpoint: with record 2 of 1..4 failing while 3
// and 4 are acknowledged, the checkpoint stays at 1 and only record 2 is
// written again; 3 and 4 are remembered as published meanwhile.
func TestPartialFailureHoldsCheckpoint(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		var retried [][]string
		sink := &fakeSink{}
		sink.fail = func(call int, recs []ingest.Record) error {
			if call == 1 {
				return ingest.WriteErrors{nil, errors.New("nack"), nil, nil}
			}
			retried = append(retried, ids(recs, "restless.orders"))
			sink.mu.Unlock()
			<-release
			sink.mu.Lock()
			return nil
		}
		src := &fakeSource{frames: append(frames(1, 2, 3, 4), frame(event("3"))), end: ingest.ErrStreamEnded}
		store := checkpoint.NewMemory()
		cfg := testConfig(t, "orders", src)
		cfg.Batch.MaxEvents = 4
		obs := newCounters()
		p := mustNew(t, cfg, sink, store, obs)
		done := make(chan error)
		go func() { done <- p.Run(t.Context()) }()
		synctest.Wait() // the retry of record 2 is blocked in the sink
		if st := p.Status()[0]; st.Acknowledged != "1" {
			t.Errorf("acknowledged position %q during the retry, want 1", st.Acknowledged)
		}
		if c, _, _ := store.Load(t.Context(), "orders"); c != "1" {
			t.Errorf("checkpoint %q during the retry, want 1", c)
		}
		close(release)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(retried) != "[[2]]" {
			t.Errorf("retried %v, want [[2]]", retried)
		}
		if got := ids(sink.records(), "restless.orders"); !equal(got, idStrings(1, 3, 4, 2)) {
			t.Errorf("acknowledged %v", got)
		}
		if obs.dup != 1 {
			t.Errorf("the repeat of 3 counted %d duplicates, want 1", obs.dup)
		}
		if c := loadCursor(t, store, "orders"); c != "4" {
			t.Errorf("checkpoint %q, want 4 (a duplicate does not move it back)", c)
		}
	})
}

// TestInFlightDuplicate: a repeat of an id whose record is not yet
// acknowledged is a duplicate, and so is one of an acknowledged id.
func TestInFlightDuplicate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		sink := &fakeSink{}
		sink.fail = func(call int, recs []ingest.Record) error {
			if call == 1 {
				sink.mu.Unlock()
				<-release
				sink.mu.Lock()
			}
			return nil
		}
		src := newChanSource()
		cfg := testConfig(t, "orders", src)
		cfg.Batch.MaxEvents = 1
		obs := newCounters()
		store := checkpoint.NewMemory()
		p := mustNew(t, cfg, sink, store, obs)
		done := make(chan error)
		go func() { done <- p.Run(t.Context()) }()
		src.ch <- frame(event("1"))
		synctest.Wait() // event 1 is being written
		src.ch <- frame(event("1"))
		src.ch <- frame(event("2"))
		synctest.Wait()
		if obs.dup != 1 {
			t.Errorf("duplicates %d while the first copy is in flight, want 1", obs.dup)
		}
		close(release)
		synctest.Wait() // 1 and 2 are acknowledged
		src.ch <- frame(event("1"))
		synctest.Wait()
		if obs.dup != 2 {
			t.Errorf("duplicates %d after a repeat of an acknowledged id, want 2", obs.dup)
		}
		close(src.ch)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if got := ids(sink.records(), "restless.orders"); !equal(got, idStrings(1, 2)) {
			t.Errorf("acknowledged %v, want [1 2]", got)
		}
		if c := loadCursor(t, store, "orders"); c != "2" {
			t.Errorf("checkpoint %q, want 2", c)
		}
	})
}

type lagObserver struct {
	NopObserver
	lags []time.Duration
}

func (o *lagObserver) EventLag(d time.Duration) { o.lags = append(o.lags, d) }

// TestEventLag: lag is now − meta.timestamp, for RFC 3339 with offsets and
// fractions; unparsable or absent timestamps are skipped.
func TestEventLag(t *testing.T) {
	now := time.Date(2026, 6, 7, 0, 49, 40, 0, time.UTC)
	cases := []struct {
		ts   string
		want time.Duration
		ok   bool
	}{
		{"2026-06-07T00:49:36.562+00:00", 3438 * time.Millisecond, true},
		{"2026-06-07T00:49:36Z", 4 * time.Second, true},
		{"2026-06-07T02:49:39.5+02:00", 500 * time.Millisecond, true},
		{"2026-06-07 00:49:36", 0, false},
		{"yesterday", 0, false},
		{"", 0, false},
	}
	for _, c := range cases {
		t.Run(c.ts, func(t *testing.T) {
			obs := &lagObserver{}
			cfg := validConfig(t, testConfig(t, "s", nil))
			p := newProcessor(cfg.Streams[0], "", obs, newFilter(t))
			p.now = func() time.Time { return now }
			var it item
			p.process(frame(event("1", timestamp(c.ts))), &it)
			if it.kind != kindPublish {
				t.Fatalf("not published: kind %d", it.kind)
			}
			if !c.ok {
				if len(obs.lags) != 0 {
					t.Errorf("lag %v reported for an unusable timestamp", obs.lags)
				}
				return
			}
			if len(obs.lags) != 1 || obs.lags[0] != c.want {
				t.Errorf("lags %v, want [%v]", obs.lags, c.want)
			}
		})
	}
}

// FuzzProcess: any frame becomes exactly one outcome; accepted records carry
// the frame's bytes unchanged and dead-letter records a reason.
func FuzzProcess(f *testing.F) {
	f.Add(event("1"), false)
	f.Add(event("2", badSig()), false)
	f.Add(event("3", errorEvent()), false)
	f.Add(event("4", noID(), unsigned()), true)
	f.Add([]byte(`{"type":"update","event_id":12}`), false)
	f.Add([]byte(`{"type":"update","data":"\u00e9","signature":"sha256=AAAA"}`), false)
	cfg := validConfig(f, testConfig(f, "s", nil))
	cfg.Streams[0].MaxEventBytes = 4096
	f.Fuzz(func(t *testing.T, data []byte, tooLarge bool) {
		obs := newCounters()
		p := newProcessor(cfg.Streams[0], "dlq", obs, newFilter(t))
		var it item
		p.process(ingest.Frame{Data: data, TooLarge: tooLarge}, &it)
		switch it.kind {
		case kindPublish:
			if !bytes.Equal(it.rec.Value, data) || tooLarge {
				t.Fatal("published a changed or too-large event")
			}
			if v, _ := it.rec.Header(HeaderVerified); v != "true" && v != "false" {
				t.Fatalf("verified header %q", v)
			}
		case kindDeadLetter:
			reason, _ := it.rec.Header(HeaderDLQReason)
			if obs.rejected[reason] != 1 || len(it.rec.Value) > 4096 {
				t.Fatalf("dead letter with reason %q, counted %v, %d bytes", reason, obs.rejected, len(it.rec.Value))
			}
		default:
			t.Fatalf("kind %d for a first event", it.kind)
		}
		if obs.received != 1 {
			t.Fatal("not counted as received")
		}
	})
}

// TestCanonicalAndNot: events whose data is in canonical form are decoded
// and verified in one pass over data; the others take the full decoder and
// re-serialising verifier. A stream mixing them publishes every one
// verified, and malformed data is a parse error with the decoder's own
// message, whichever way came first.
func TestCanonicalAndNot(t *testing.T) {
	spaced := func(id int) []byte {
		// Signed over the canonical form, sent with spaces and keys out of
		// order, as a JSON library with default settings writes it.
		canon := fmt.Sprintf(`{"id":"order_%d","total":42}`, id)
		sig, err := client.ComputeSignatureRaw(testSecret, []byte(canon))
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Appendf(nil, `{"type":"update","data":{"total": 42, "id": "order_%d"},"signature":"%s","event_id":"%d"}`, id, sig, id)
	}
	malformed := []byte(`{"type":"update","data":{"id":tru},"signature":"` + strings.Repeat("0", 64) + `","event_id":"bad"}`)
	var in []ingest.Frame
	var want []string
	for i := 1; i <= 300; i++ {
		switch {
		case i == 150:
			in = append(in, frame(malformed))
			continue
		case i%7 == 0 || (i > 200 && i < 280): // scattered, then a long run
			in = append(in, frame(spaced(i)))
		default:
			in = append(in, frame(event(strconv.Itoa(i))))
		}
		want = append(want, strconv.Itoa(i))
	}
	src := &fakeSource{frames: in, end: ingest.ErrStreamEnded}
	cfg := testConfig(t, "orders", src)
	cfg.DeadLetter = "restless.dlq"
	sink, obs := &fakeSink{}, newCounters()
	if err := mustNew(t, cfg, sink, checkpoint.NewMemory(), obs).Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	recs := sink.records()
	if got := ids(recs, "restless.orders"); !equal(got, want) {
		t.Fatalf("published %d events, want %d: %v", len(got), len(want), got)
	}
	for _, r := range recs {
		if r.Dest != "restless.orders" {
			continue
		}
		if v, _ := r.Header(HeaderVerified); v != "true" {
			id, _ := r.Header(HeaderEventID)
			t.Fatalf("event %s: %s = %q", id, HeaderVerified, v)
		}
	}
	// Which way each kind of event went, on a processor of its own.
	pcfg := validConfig(t, testConfig(t, "orders", nil))
	p := newProcessor(pcfg.Streams[0], "", NopObserver{}, newFilter(t))
	var it item
	p.process(frame(event("900")), &it)
	if it.kind != kindPublish || p.canonSkip != 0 {
		t.Fatalf("canonical event: kind %d, canonSkip %d; want published by the one-pass decoder", it.kind, p.canonSkip)
	}
	p.process(frame(spaced(901)), &it)
	if it.kind != kindPublish || p.canonSkip != canonRetry {
		t.Fatalf("spaced event: kind %d, canonSkip %d; want published after the one-pass decoder said no", it.kind, p.canonSkip)
	}
	p.process(frame(event("902")), &it)
	if it.kind != kindPublish || p.canonSkip != canonRetry-1 {
		t.Fatalf("next event: kind %d, canonSkip %d; want the plain decoder while backing off", it.kind, p.canonSkip)
	}

	var ev client.Event
	wantErr := client.DecodeEvent(malformed, &ev)
	if wantErr == nil {
		t.Fatal("the malformed event decodes")
	}
	var dl []ingest.Record
	for _, r := range recs {
		if r.Dest == "restless.dlq" {
			dl = append(dl, r)
		}
	}
	if len(dl) != 1 {
		t.Fatalf("%d dead letters, want 1", len(dl))
	}
	if reason, _ := dl[0].Header(HeaderDLQReason); reason != ReasonParseError {
		t.Errorf("reason %q", reason)
	}
	if msg, _ := dl[0].Header(HeaderDLQError); msg != wantErr.Error() {
		t.Errorf("dead-letter error %q, want the decoder's %q", msg, wantErr)
	}
}

// TestDefaultDestinationIsTheClients ties a stream's default destination
// to client.DefaultDestination, the one place the "restless.<name>" rule is
// written, and shows a configured destination is kept.
func TestDefaultDestinationIsTheClients(t *testing.T) {
	open := func(context.Context, string) (Source, error) { return nil, nil }
	for _, name := range []string{"a", "orders", "eu-west_2"} {
		got := validConfig(t, Config{Streams: []StreamConfig{{Name: name, Open: open}}}).Streams[0].Destination
		if want := client.DefaultDestination(name); got != want {
			t.Errorf("stream %q: default destination %q, want client.DefaultDestination %q", name, got, want)
		}
	}
	kept := validConfig(t, Config{Streams: []StreamConfig{{Name: "a", Open: open, Destination: "orders.out"}}})
	if got := kept.Streams[0].Destination; got != "orders.out" {
		t.Errorf("configured destination became %q", got)
	}
}
