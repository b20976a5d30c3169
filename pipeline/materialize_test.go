package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/restless-stream/ingest"
	"github.com/restless-stream/ingest/checkpoint"
	"github.com/restless-stream/ingest/client"
)

// patchEvent returns a signed update event carrying data; fallback sets
// meta.payload_mode_fallback (a full document on a JSON_PATCH stream).
func patchEvent(id, data string, fallback bool) ingest.Frame {
	sig, err := client.ComputeSignatureRaw(testSecret, []byte(data))
	if err != nil {
		panic(err)
	}
	fb := "null"
	if fallback {
		fb = `"FULL_DATA"`
	}
	b := `{"type":"update","meta":{"timestamp":"2026-06-07T00:49:36.562+00:00","payload_mode_fallback":` + fb +
		`},"data":` + data + `,"error":null,"signature":"` + sig + `","event_id":"` + id + `"}`
	return frame([]byte(b))
}

func materializeConfig(t *testing.T, src Source, dlq string) Config {
	cfg := testConfig(t, "orders", src)
	cfg.DeadLetter = dlq
	cfg.Streams[0].Materialize = "restless.orders.doc"
	return cfg
}

// docs returns, in order, the event id and value of each document record.
func docs(t *testing.T, recs []ingest.Record) (ids, values []string) {
	t.Helper()
	for _, r := range recs {
		if r.Dest != "restless.orders.doc" {
			continue
		}
		id, _ := r.Header(HeaderEventID)
		if m, _ := r.Header(HeaderMaterialized); m != "true" {
			t.Errorf("document record of %s: restless-materialized %q", id, m)
		}
		if s, _ := r.Header(HeaderStream); s != "orders" || string(r.Key) != "orders" {
			t.Errorf("document record of %s: stream %q, key %q", id, s, r.Key)
		}
		if ty, _ := r.Header(HeaderEventType); ty != "update" {
			t.Errorf("document record of %s: type %q", id, ty)
		}
		if r.MsgID != "orders:"+id+":materialized" {
			t.Errorf("document record of %s: MsgID %q", id, r.MsgID)
		}
		if !r.JSONValue || !json.Valid(r.Value) {
			t.Errorf("document record of %s: value %q", id, r.Value)
		}
		ids = append(ids, id)
		values = append(values, string(r.Value))
	}
	return ids, values
}

func TestMaterialize(t *testing.T) {
	for _, dlq := range []string{"", "restless.dlq"} {
		t.Run("dlq="+dlq, func(t *testing.T) {
			src := &fakeSource{frames: []ingest.Frame{
				patchEvent("1", `{"a":1}`, false),
				patchEvent("2", `[{"op":"replace","path":"/a","value":2}]`, false),
				patchEvent("3", `[{"op":"remove","path":"/nope"}]`, false),     // fails: unset
				patchEvent("4", `[{"op":"add","path":"/b","value":1}]`, false), // no document
				frame(event("5", errorEvent())),
				patchEvent("6", `[9,{"x":1}]`, true), // a full document that is an array
				patchEvent("7", `[{"op":"add","path":"/-","value":3}]`, false),
				patchEvent("7", `[{"op":"add","path":"/-","value":3}]`, false), // duplicate
				patchEvent("8", `{"c":"<&>"}`, false),
			}, end: ingest.ErrStreamEnded}
			cfg := materializeConfig(t, src, dlq)
			sink, store, obs := &fakeSink{}, checkpoint.NewMemory(), newCounters()
			if err := mustNew(t, cfg, sink, store, obs).Run(t.Context()); err != nil {
				t.Fatal(err)
			}
			recs := sink.records()
			if got, want := ids(recs, "restless.orders"), idStrings(1, 2, 3, 4, 5, 6, 7, 8); !equal(got, want) {
				t.Errorf("event records %v, want %v", got, want)
			}
			gotIDs, gotDocs := docs(t, recs)
			wantIDs := idStrings(1, 2, 6, 7, 8)
			wantDocs := []string{`{"a":1}`, `{"a":2}`, `[9,{"x":1}]`, `[9,{"x":1},3]`, `{"c":"<&>"}`}
			if !equal(gotIDs, wantIDs) || !equal(gotDocs, wantDocs) {
				t.Errorf("documents %v %v, want %v %v", gotIDs, gotDocs, wantIDs, wantDocs)
			}
			// The event records are unchanged.
			for _, r := range recs {
				if r.Dest == "restless.orders" && !strings.Contains(string(r.Value), `"event_id"`) {
					t.Errorf("event record changed: %s", r.Value)
				}
			}
			wantDL := 0
			if dlq != "" {
				wantDL = 2
			}
			if got := ids(recs, "restless.dlq"); len(got) != wantDL || (wantDL == 2 && !equal(got, idStrings(3, 4))) {
				t.Errorf("dead letters %v, want %d (3, 4)", got, wantDL)
			}
			for _, r := range recs {
				if r.Dest == "restless.dlq" {
					if reason, _ := r.Header(HeaderDLQReason); reason != ReasonPatchFailed {
						t.Errorf("dead-letter reason %q", reason)
					}
					if msg, _ := r.Header(HeaderDLQError); !strings.Contains(msg, "patch failed") {
						t.Errorf("dead-letter error %q", msg)
					}
				}
			}
			if obs.rejected[ReasonPatchFailed] != 2 || obs.dlq != wantDL {
				t.Errorf("rejected %v, dead-lettered %d", obs.rejected, obs.dlq)
			}
			if obs.published != 8 {
				t.Errorf("published counter %d, want 8 (documents are not events)", obs.published)
			}
			cur, doc, _, err := store.LoadDocument(t.Context(), "orders")
			if err != nil || cur != "8" || string(doc) != `{"c":"<&>"}` {
				t.Errorf("checkpoint %q %s %v", cur, doc, err)
			}
		})
	}
}

// TestMaterializeRestart: a lane started again continues with the document
// saved with its checkpoint; a failed patch's unset document is saved too.
func TestMaterializeRestart(t *testing.T) {
	t.Run("memory", func(t *testing.T) { materializeRestart(t, checkpoint.NewMemory()) })
	t.Run("file", func(t *testing.T) {
		dir := t.TempDir()
		f, err := checkpoint.NewFile(dir)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		materializeRestart(t, f)
	})
}

func materializeRestart(t *testing.T, store checkpoint.DocumentStore) {
	run := func(fs ...ingest.Frame) []string {
		t.Helper()
		sink := &fakeSink{}
		cfg := materializeConfig(t, &fakeSource{frames: fs, end: ingest.ErrStreamEnded}, "")
		if err := mustNew(t, cfg, sink, store, newCounters()).Run(t.Context()); err != nil {
			t.Fatal(err)
		}
		_, values := docs(t, sink.records())
		return values
	}
	run(patchEvent("1", `{"a":[1]}`, false))
	if got := run(patchEvent("2", `[{"op":"add","path":"/a/-","value":2}]`, false)); !equal(got, []string{`{"a":[1,2]}`}) {
		t.Fatalf("after a restart: %v", got)
	}
	run(patchEvent("3", `[{"op":"test","path":"/a/0","value":5}]`, false))
	if _, doc, _, _ := store.LoadDocument(t.Context(), "orders"); doc != nil {
		t.Fatalf("saved document %s after a failed patch, want none", doc)
	}
	if got := run(patchEvent("4", `[]`, false), patchEvent("5", `{"z":0}`, true)); !equal(got, []string{`{"z":0}`}) {
		t.Fatalf("after a restart with no document: %v", got)
	}
}

// TestMaterializeRejectedEventUnsets: an event rejected for its signature
// may have been a patch: the document is unset, so the next patch cannot
// apply to a document that misses a change.
func TestMaterializeRejectedEventUnsets(t *testing.T) {
	bad := patchEvent("2", `[{"op":"replace","path":"/a","value":2}]`, false)
	bad.Data = []byte(strings.Replace(string(bad.Data), `"signature":"`, `"signature":"00`, 1))
	src := &fakeSource{frames: []ingest.Frame{
		patchEvent("1", `{"a":1}`, false),
		bad,
		patchEvent("3", `[{"op":"add","path":"/b","value":3}]`, false),
	}, end: ingest.ErrStreamEnded}
	sink, obs := &fakeSink{}, newCounters()
	if err := mustNew(t, materializeConfig(t, src, ""), sink, checkpoint.NewMemory(), obs).Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, values := docs(t, sink.records()); !equal(values, []string{`{"a":1}`}) {
		t.Fatalf("documents %v: a document missing event 2 was published", values)
	}
	if obs.rejected[ReasonSignatureInvalid] != 1 || obs.rejected[ReasonPatchFailed] != 1 {
		t.Fatalf("rejected %v", obs.rejected)
	}
}

// plainStore hides a store's documents.
type plainStore struct{ checkpoint.Store }

func TestMaterializeNeedsDocumentStore(t *testing.T) {
	cfg := materializeConfig(t, &fakeSource{end: ingest.ErrStreamEnded}, "")
	err := mustNew(t, cfg, &fakeSink{}, plainStore{checkpoint.NewMemory()}, newCounters()).Run(t.Context())
	if err == nil || !strings.Contains(err.Error(), "materialize") {
		t.Fatalf("Run = %v, want an error naming materialize", err)
	}
}

func TestMaterializeValidate(t *testing.T) {
	s := StreamConfig{Name: "orders", Open: func(context.Context, string) (Source, error) { return nil, nil }, Materialize: "restless.orders"}
	var fe *ingest.FieldError
	if err := s.Validate(); !errors.As(err, &fe) || fe.Field != "Materialize" {
		t.Fatalf("Validate = %v, want a Materialize field error", err)
	}
	s.Materialize, s.MaxEventBytes = "docs", checkpoint.MaxDocumentBytes+1
	if err := s.Validate(); !errors.As(err, &fe) || fe.Field != "MaxEventBytes" {
		t.Fatalf("Validate = %v, want a MaxEventBytes field error", err)
	}
	s.MaxEventBytes = 0
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
}
