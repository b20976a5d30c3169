package dedupe

import (
	"strconv"
	"testing"
	"time"
)

// TestFilterClaims walks one id through each way it can go: claimed, a
// duplicate while in flight, remembered once acknowledged, forgotten after
// its ttl; and a refused id, released, is not a duplicate later.
func TestFilterClaims(t *testing.T) {
	const s = int64(time.Second)
	f := New(10, time.Minute)
	a, b := Of("a"), Of("b")

	if f.SeenOrClaim(a, 0) {
		t.Fatal("a new id is a duplicate")
	}
	if !f.SeenOrClaim(a, 0) {
		t.Fatal("an id in flight is not a duplicate")
	}
	if f.Used() {
		t.Fatal("claims alone allocated the window")
	}
	f.Acknowledge([]Fingerprint{a}, 0)
	if !f.SeenOrClaim(a, 30*s) {
		t.Fatal("an acknowledged id is not a duplicate within the ttl")
	}
	if f.SeenOrClaim(a, 62*s) {
		t.Fatal("an acknowledged id is still a duplicate after its ttl")
	}
	f.Release([]Fingerprint{a})

	if f.SeenOrClaim(b, 0) {
		t.Fatal("a new id is a duplicate")
	}
	f.Release([]Fingerprint{b})
	if f.SeenOrClaim(b, 0) {
		t.Fatal("a released id is still claimed")
	}
	if !f.Used() || f.Freed() {
		t.Fatal("Used or Freed wrong before Close")
	}
	f.Close()
	if !f.Freed() {
		t.Fatal("Close did not free the window")
	}
	f.Close() // a second close is harmless
}

// TestFilterNotDuplicateOfOthers: distinct ids never collide, acknowledged or in flight.
func TestFilterNotDuplicateOfOthers(t *testing.T) {
	f := New(1000, time.Hour)
	defer f.Close()
	var acked []Fingerprint
	for i := range 2000 {
		fp := Of(strconv.Itoa(i))
		if f.SeenOrClaim(fp, 0) {
			t.Fatalf("id %d taken for a duplicate", i)
		}
		if i%2 == 0 {
			acked = append(acked[:0], fp)
			f.Acknowledge(acked, 0)
		}
	}
}
