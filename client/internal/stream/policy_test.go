package stream

import (
	"testing"
	"time"
)

func TestDelayGrowsAndCaps(t *testing.T) {
	p := Policy{Initial: 100 * time.Millisecond, Max: time.Second}
	tests := []struct {
		attempt  int
		min, max time.Duration
	}{
		{0, 50 * time.Millisecond, 100 * time.Millisecond},
		{1, 50 * time.Millisecond, 100 * time.Millisecond},
		{2, 100 * time.Millisecond, 200 * time.Millisecond},
		{3, 200 * time.Millisecond, 400 * time.Millisecond},
		{4, 400 * time.Millisecond, 800 * time.Millisecond},
		{5, 500 * time.Millisecond, time.Second},
		{50, 500 * time.Millisecond, time.Second},
		{1 << 30, 500 * time.Millisecond, time.Second},
	}
	for _, tt := range tests {
		for range 200 {
			d := p.Delay(tt.attempt)
			if d < tt.min || d > tt.max {
				t.Fatalf("Delay(%d) = %v, want in [%v, %v]", tt.attempt, d, tt.min, tt.max)
			}
		}
	}
}

func TestDefaults(t *testing.T) {
	d := Policy{}.Delay(1)
	if d < DefaultInitial/2 || d > DefaultInitial {
		t.Fatalf("default first delay %v", d)
	}
	d = Policy{}.Delay(100)
	if d < DefaultMax/2 || d > DefaultMax {
		t.Fatalf("default capped delay %v", d)
	}
}

func TestExhausted(t *testing.T) {
	if (Policy{}).Exhausted(1 << 20) {
		t.Fatal("MaxAttempts 0 must mean forever")
	}
	p := Policy{MaxAttempts: 3}
	if p.Exhausted(3) || !p.Exhausted(4) {
		t.Fatal("MaxAttempts 3 allows attempts 1..3 only")
	}
}

func TestHint(t *testing.T) {
	p := Policy{Initial: time.Second, Max: 10 * time.Second}
	tests := []struct {
		name             string
		computed, server time.Duration
		want             time.Duration
	}{
		{"no hint", 2 * time.Second, 0, 2 * time.Second},
		{"longer hint honoured", 2 * time.Second, 5 * time.Second, 5 * time.Second},
		{"hint above Max honoured", 2 * time.Second, 60 * time.Second, 60 * time.Second},
		{"hint capped at MaxHint", 2 * time.Second, time.Hour, MaxHint},
		{"shorter hint keeps computed delay", 2 * time.Second, time.Second, 2 * time.Second},
	}
	for _, tt := range tests {
		if got := p.Hint(tt.computed, tt.server); got != tt.want {
			t.Errorf("%s: Hint(%v, %v) = %v, want %v", tt.name, tt.computed, tt.server, got, tt.want)
		}
	}
}

func TestDelayFloor(t *testing.T) {
	for _, p := range []Policy{{Initial: time.Nanosecond}, {Initial: time.Nanosecond, Max: time.Nanosecond}, {Initial: time.Nanosecond, Fixed: true}} {
		for attempt := 1; attempt < 4; attempt++ {
			if d := p.Delay(attempt); d < MinDelay {
				t.Fatalf("%+v: Delay(%d) = %v, below the floor %v", p, attempt, d, MinDelay)
			}
		}
	}
	if d := (Policy{Initial: time.Nanosecond, Fixed: true}).Delay(1); d != MinDelay {
		t.Fatalf("fixed 1ns: %v, want %v", d, MinDelay)
	}
}

func TestFixed(t *testing.T) {
	p := Policy{Initial: 2 * time.Second, Fixed: true}
	for _, attempt := range []int{1, 2, 10, 1 << 20} {
		if d := p.Delay(attempt); d != 2*time.Second {
			t.Fatalf("Delay(%d) = %v, want exactly 2s", attempt, d)
		}
	}
	// A server may ask a fixed policy for longer, up to MaxHint.
	if got := p.Hint(2*time.Second, time.Minute); got != time.Minute {
		t.Fatalf("hint beyond a fixed delay: %v", got)
	}
}
