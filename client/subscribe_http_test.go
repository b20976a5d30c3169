package client

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/restless-stream/ingest/client/internal/stream"
)

func TestCheckStatus(t *testing.T) {
	now := time.Now()
	tests := []struct {
		code      int
		retry     string
		ended     bool
		permanent bool
		hint      time.Duration
	}{
		{204, "", true, false, 0},
		{401, "", false, true, 0},
		{403, "", false, true, 0},
		{404, "", false, true, 0},
		{410, "", false, true, 0},
		{408, "", false, false, 0},
		{429, "3", false, false, 3 * time.Second},
		{503, "5", false, false, 5 * time.Second},
		{500, "", false, false, 0},
		{302, "", false, false, 0},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.code), func(t *testing.T) {
			resp := &http.Response{StatusCode: tt.code, Header: http.Header{}}
			if tt.retry != "" {
				resp.Header.Set("Retry-After", tt.retry)
			}
			err := checkStatus(resp, "http://h/x", []byte(`{"message":"nope"}`), now)
			if errors.Is(err, ErrStreamEnded) != tt.ended || stream.IsPermanent(err) != tt.permanent || stream.RetryAfterOf(err) != tt.hint {
				t.Fatalf("checkStatus(%d) = %v (permanent %v, hint %v)", tt.code, err, stream.IsPermanent(err), stream.RetryAfterOf(err))
			}
			var se *StatusError
			if !tt.ended && (!errors.As(err, &se) || se.Code != tt.code || !strings.Contains(err.Error(), "nope")) {
				t.Fatalf("error %v lacks status or body", err)
			}
		})
	}
}

func TestResumeURL(t *testing.T) {
	u, _ := url.Parse("http://h/?streamId=s1&since=2026-01-01&cursor=old")
	if got := resumeURL(u, "42", "x"); got != "http://h/?cursor=42&streamId=s1" {
		t.Fatal(got)
	}
	u, _ = url.Parse("http://h/?streamId=s1")
	if got := resumeURL(u, "", "2026-01-01T00:00:00Z"); got != "http://h/?since=2026-01-01T00%3A00%3A00Z&streamId=s1" {
		t.Fatal(got)
	}
	if got := resumeURL(u, "", ""); got != "http://h/?streamId=s1" {
		t.Fatal(got)
	}
}

func TestRedact(t *testing.T) {
	raw := "https://user:pw@h/direct?url=https%3A%2F%2Fa&apiKey=rs_secret&headers=%7B%22Authorization%22%3A%22tok%22%7D"
	got := redactRawURL(raw)
	for _, leak := range []string{"rs_secret", "tok", "pw@"} {
		if strings.Contains(got, leak) {
			t.Fatalf("%q leaks %q", got, leak)
		}
	}
	if !strings.Contains(got, "url=https") {
		t.Fatalf("%q lost the harmless query", got)
	}
}

func TestScrubError(t *testing.T) {
	raw := "http://u:p%40ss@h/ws/direct?url=x&apiKey=rs_se%2Fcret&headers=%7B%22a%22%3A%22tok%22%7D"
	base := fmt.Errorf("failed to dial: %w", &url.Error{Op: "Get", URL: raw, Err: io.EOF})
	got := scrubError(base, raw).Error()
	for _, leak := range []string{"rs_se", "tok", "p%40ss"} {
		if strings.Contains(got, leak) {
			t.Fatalf("%q leaks %q", got, leak)
		}
	}
	plain := errors.New("connection refused")
	if scrubError(plain, raw) != plain {
		t.Fatal("a clean error must be kept as is")
	}
}

// TestStatusErrorSentinels: a refused runtime connection matches the same
// sentinels as a REST error of the same status.
func TestStatusErrorSentinels(t *testing.T) {
	for code, want := range map[int]error{401: ErrUnauthorized, 403: ErrForbidden, 404: ErrNotFound, 429: ErrRateLimited} {
		err := fmt.Errorf("wrapped: %w", &StatusError{Code: code, URL: "http://h/"})
		if !errors.Is(err, want) || !errors.Is(err, ErrRestless) {
			t.Errorf("HTTP %d does not match %v", code, want)
		}
		if errors.Is(err, ErrStreamEnded) {
			t.Errorf("HTTP %d matches ErrStreamEnded", code)
		}
	}
	if errors.Is(&StatusError{Code: 500}, ErrNotFound) {
		t.Error("HTTP 500 matches ErrNotFound")
	}
}
