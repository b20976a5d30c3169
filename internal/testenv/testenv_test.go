package testenv

import (
	"errors"
	"testing"
)

// recorder is a testing.TB that notes how it was stopped.
type recorder struct {
	testing.TB
	failed, skipped, logged bool
}

func (r *recorder) Helper()               {}
func (r *recorder) Fatalf(string, ...any) { r.failed = true }
func (r *recorder) Skipf(string, ...any)  { r.skipped = true }
func (r *recorder) Logf(string, ...any)   { r.logged = true }

func TestRequire(t *testing.T) {
	missing := errors.New("connection refused")
	cases := []struct {
		ci            string
		err           error
		failed, skips bool
	}{
		{"", nil, false, false},
		{"true", nil, false, false},
		{"", missing, false, true},
		{"false", missing, false, true},
		{"true", missing, true, false},
	}
	for _, c := range cases {
		t.Setenv("CI", c.ci)
		r := &recorder{TB: t}
		Require(r, "a broker", c.err)
		if r.failed != c.failed || r.skipped != c.skips {
			t.Errorf("CI=%q err=%v: failed %v skipped %v, want %v %v", c.ci, c.err, r.failed, r.skipped, c.failed, c.skips)
		}
	}
}

func TestHave(t *testing.T) {
	missing := errors.New("not found")
	t.Setenv("CI", "")
	r := &recorder{TB: t}
	if Have(r, "kcat", missing) || r.failed || !r.logged {
		t.Error("outside CI, a missing tool is logged and reported absent")
	}
	if r := (&recorder{TB: t}); !Have(r, "kcat", nil) || r.failed || r.logged {
		t.Error("a present tool is reported present, quietly")
	}
	t.Setenv("CI", "true")
	if r := (&recorder{TB: t}); Have(r, "kcat", missing) || !r.failed {
		t.Error("under CI, a missing tool fails the test")
	}
}
