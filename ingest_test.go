package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestSecretNeverPrints(t *testing.T) {
	s := Secret("rs_topsecret")
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("x", "key", s)
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "key", s)
	js, _ := json.Marshal(struct{ K Secret }{s})
	out := fmt.Sprintf("%v %s %+v %#v %q", s, s, s, s, s) + buf.String() + string(js)
	if strings.Contains(out, "topsecret") {
		t.Fatalf("secret leaked: %s", out)
	}
	if s.Reveal() != "rs_topsecret" {
		t.Fatal("Reveal must return the value")
	}
	if Secret("").String() != "" {
		t.Fatal("an empty secret prints empty, so configs show it is unset")
	}
}

func TestWriteErrors(t *testing.T) {
	boom := errors.New("boom")
	we := WriteErrors{nil, boom, nil, boom}
	if we.Count() != 2 {
		t.Fatalf("Count = %d", we.Count())
	}
	var err error = we
	var got WriteErrors
	if !errors.As(err, &got) || len(got) != 4 {
		t.Fatal("errors.As must find WriteErrors")
	}
	if !strings.Contains(err.Error(), "2 of 4") || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("message %q", err.Error())
	}
}

func TestPermanent(t *testing.T) {
	err := fmt.Errorf("sse: %w", &PermanentError{Err: errors.New("401 unauthorized")})
	if !IsPermanent(err) || IsPermanent(errors.New("x")) {
		t.Fatal("IsPermanent")
	}
}

func TestRecordHeader(t *testing.T) {
	r := Record{Headers: []Header{{"restless-stream", "orders"}, {"restless-event-id", "1"}}}
	if v, ok := r.Header("restless-event-id"); !ok || v != "1" {
		t.Fatal("Header lookup")
	}
	if _, ok := r.Header("nope"); ok {
		t.Fatal("missing header found")
	}
}

func TestFieldErrorPrefix(t *testing.T) {
	err := errors.Join(
		FieldErrorf("CAFile", "no such file"),
		FieldErrorf("[2]", "empty"),
		errors.New("plain"),
	)
	got := Prefix("TLS", err)
	var fields []string
	for _, e := range got.(interface{ Unwrap() []error }).Unwrap() {
		var fe *FieldError
		if errors.As(e, &fe) {
			fields = append(fields, fe.Field)
		} else {
			fields = append(fields, e.Error())
		}
	}
	want := []string{"TLS.CAFile", "TLS[2]", "plain"}
	if strings.Join(fields, ",") != strings.Join(want, ",") {
		t.Fatalf("fields = %q, want %q", fields, want)
	}
	// Joins within joins (a Config validating a Config that validates
	// one) come out flat, every field prefixed.
	nested := Prefix("Sink", errors.Join(Prefix("TLS", errors.Join(FieldErrorf("CAFile", "a"), FieldErrorf("KeyFile", "b"))), FieldErrorf("Brokers[0]", "c")))
	fields = fields[:0]
	for _, e := range Split(nested) {
		var fe *FieldError
		if !errors.As(e, &fe) {
			t.Fatalf("%v is not a FieldError", e)
		}
		fields = append(fields, fe.Field)
	}
	if got, want := strings.Join(fields, ","), "Sink.TLS.CAFile,Sink.TLS.KeyFile,Sink.Brokers[0]"; got != want {
		t.Fatalf("nested fields = %s, want %s", got, want)
	}
	if len(nested.(interface{ Unwrap() []error }).Unwrap()) != 3 {
		t.Fatal("Prefix does not return one flat join")
	}
	if Split(nil) != nil || len(Split(errors.New("x"))) != 1 {
		t.Fatal("Split of nil or of one error")
	}
	if Prefix("X", nil) != nil {
		t.Fatal("Prefix of nil is not nil")
	}
	if got := FieldErrorf("Name", "bad %d", 1).Error(); got != "Name: bad 1" {
		t.Fatalf("Error() = %q", got)
	}
}
