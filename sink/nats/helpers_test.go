package nats

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/restless-stream/ingest"
	"github.com/restless-stream/ingest/internal/testenv"
)

// sharedServer returns the URL of the shared NATS server; without it the
// test is skipped, or fails under CI.
func sharedServer(tb testing.TB) string {
	tb.Helper()
	return testenv.NATS(tb)
}

func uniqueID(tb testing.TB) string {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		tb.Fatal(err)
	}
	return hex.EncodeToString(b[:])
}

// testConfig returns a JetStream config with a stream and subjects of its
// own, and deletes the stream when the test ends.
func testConfig(tb testing.TB, url string) (Config, string) {
	tb.Helper()
	id := uniqueID(tb)
	base := "t" + id
	cfg := Config{
		URLs:          []string{url},
		Stream:        "TEST_" + strings.ToUpper(id),
		BaseSubject:   base + ".>",
		ReconnectWait: 20 * time.Millisecond,
	}
	tb.Cleanup(func() { deleteStream(tb, url, cfg.Stream) })
	return cfg, base
}

func deleteStream(tb testing.TB, url, name string) {
	nc, err := nats.Connect(url)
	if err != nil {
		return // the server of the test is gone with its data
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	// A cluster whose nodes were just restarted may take a while to elect
	// the stream's leader again: retry what times out, within a minute.
	deadline := time.Now().Add(time.Minute)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := js.DeleteStream(ctx, name)
		cancel()
		if err == nil || errors.Is(err, jetstream.ErrStreamNotFound) {
			return
		}
		var api *jetstream.APIError
		notYet := errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &api) && api.Code == 503)
		if !notYet || time.Now().After(deadline) {
			tb.Errorf("delete stream %s: %v", name, err)
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func records(subject, stream string, from, n int) []ingest.Record {
	recs := make([]ingest.Record, n)
	for i := range recs {
		id := fmt.Sprint(from + i)
		recs[i] = ingest.Record{
			Dest:  subject,
			Key:   []byte(stream),
			MsgID: stream + ":" + id,
			Headers: []ingest.Header{
				{Key: "restless-stream", Value: stream},
				{Key: "restless-event-id", Value: id},
				{Key: "restless-event-type", Value: "update"},
				{Key: "restless-timestamp", Value: "2026-11-26T10:00:00Z"},
				{Key: "restless-verified", Value: "true"},
				{Key: "content-type", Value: "application/json"},
			},
			Value: fmt.Appendf(nil, `{"type":"update","event_id":"%s","data":{"n":%d}}`, id, from+i),
		}
	}
	return recs
}

func newSink(tb testing.TB, cfg Config) *Sink {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := New(ctx, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close(context.Background()) })
	return s
}

// storedMsgs reads every message of the stream in order.
func storedMsgs(tb testing.TB, s *Sink) []*jetstream.RawStreamMsg {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := s.JetStream().Stream(ctx, s.Stream())
	if err != nil {
		tb.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			tb.Fatalf("get message %d: %v", seq, err)
		}
		out = append(out, m)
	}
	return out
}
