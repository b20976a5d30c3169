package checkpoint

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// claimerConformance runs the fencing behaviour every Claimer promises. s is
// a fresh store; the streams are its own.
func claimerConformance(t *testing.T, s Claimer) {
	t.Helper()
	ctx := t.Context()
	t.Run("first claim", func(t *testing.T) {
		c, err := s.Claim(ctx, "fresh", "a/1")
		if err != nil {
			t.Fatal(err)
		}
		if cur, ok, err := c.Load(ctx, "fresh"); err != nil || ok || cur != "" {
			t.Fatalf("Load = %q, %v, %v; want nothing saved", cur, ok, err)
		}
		if c.Epoch() == 0 || c.Stream() != "fresh" || c.Holder() != "a/1" {
			t.Fatalf("claim %+v", c)
		}
	})
	t.Run("handover", func(t *testing.T) {
		old, err := s.Claim(ctx, "orders", "a/1")
		if err != nil {
			t.Fatal(err)
		}
		for _, cur := range []string{"100", "101"} {
			if err := old.Save(ctx, "orders", cur); err != nil {
				t.Fatal(err)
			}
		}
		if got, ok, err := s.Load(ctx, "orders"); err != nil || !ok || got != "101" {
			t.Fatalf("store Load = %q, %v, %v; want 101", got, ok, err)
		}
		next, err := s.Claim(ctx, "orders", "b/2")
		if err != nil {
			t.Fatal(err)
		}
		if next.Epoch() <= old.Epoch() {
			t.Errorf("epochs %d then %d: not increasing", old.Epoch(), next.Epoch())
		}
		if got, ok, _ := next.Load(ctx, "orders"); !ok || got != "101" {
			t.Errorf("new owner resumes from %q, %v; want 101", got, ok)
		}
		// The old owner's late saves never win, now or later.
		for _, cur := range []string{"99", "250"} {
			if err := old.Save(ctx, "orders", cur); !errors.Is(err, ErrFenced) {
				t.Fatalf("stale Save(%s) = %v; want ErrFenced", cur, err)
			}
		}
		if got, _, _ := s.Load(ctx, "orders"); got != "101" {
			t.Errorf("after stale saves Load = %q; want 101", got)
		}
		if err := next.Save(ctx, "orders", "102"); err != nil {
			t.Fatal(err)
		}
		if got, _, _ := s.Load(ctx, "orders"); got != "102" {
			t.Errorf("Load = %q; want 102", got)
		}
		if got, _, _ := next.Load(ctx, "orders"); got != "102" {
			t.Errorf("claim Load = %q; want 102", got)
		}
	})
	t.Run("claim misuse", func(t *testing.T) {
		c, err := s.Claim(ctx, "misuse", "")
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Save(ctx, "other", "1"); err == nil {
			t.Error("a claim saved another stream")
		}
		if err := c.Save(ctx, "misuse", "with\x00nul"); err == nil {
			t.Error("a cursor with NUL was saved")
		}
		if _, err := s.Claim(ctx, "Bad Name", "x"); err == nil {
			t.Error("a bad stream name was claimed")
		}
		if _, err := s.Claim(ctx, "misuse", string(make([]byte, 300))); err == nil {
			t.Error("a holder of 300 bytes was accepted")
		}
		_ = c.Close()
		if err := c.Save(ctx, "misuse", "1"); !errors.Is(err, ErrClosed) {
			t.Errorf("Save after Close = %v", err)
		}
	})
	t.Run("racing owners", func(t *testing.T) {
		// Two replicas keep taking the stream from each other and saving
		// increasing cursors. Whatever the interleaving, the stored cursor
		// is the last one saved under the newest claim.
		var (
			mu   sync.Mutex
			last = map[uint64]int{}
			top  uint64
			seq  int
			wg   sync.WaitGroup
		)
		for w := range 2 {
			wg.Go(func() {
				for range 5 {
					c, err := s.Claim(ctx, "contended", fmt.Sprintf("w%d", w))
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					top = max(top, c.Epoch())
					mu.Unlock()
					for range 5 {
						mu.Lock()
						seq++
						n := seq
						mu.Unlock()
						err := c.Save(ctx, "contended", strconv.Itoa(n))
						if errors.Is(err, ErrFenced) {
							break
						}
						if err != nil {
							t.Error(err)
							return
						}
						mu.Lock()
						last[c.Epoch()] = n
						mu.Unlock()
					}
				}
			})
		}
		wg.Wait()
		got, ok, err := s.Load(ctx, "contended")
		if err != nil || !ok {
			t.Fatalf("Load = %q, %v, %v", got, ok, err)
		}
		// The newest claim may not have saved: then its predecessor's last
		// save stands, which it carried over.
		want := ""
		for e := top; e > 0; e-- {
			if n, ok := last[e]; ok {
				want = strconv.Itoa(n)
				break
			}
		}
		if got != want {
			t.Errorf("stored %q, want %q (last save of the newest claim that saved)", got, want)
		}
	})
	t.Run("fenced router", func(t *testing.T) {
		f := NewFenced()
		if err := f.Save(ctx, "routed", "1"); !errors.Is(err, ErrNotClaimed) {
			t.Errorf("Save without a claim = %v", err)
		}
		c1, err := s.Claim(ctx, "routed", "a/1")
		if err != nil {
			t.Fatal(err)
		}
		f.Add(c1)
		if err := f.Save(ctx, "routed", "7"); err != nil {
			t.Fatal(err)
		}
		c2, err := s.Claim(ctx, "routed", "a/2")
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Save(ctx, "routed", "8"); !errors.Is(err, ErrFenced) {
			t.Errorf("Save through a superseded claim = %v", err)
		}
		f.Add(c2)
		f.Remove(c1) // an old lane stopping late does not unregister the new claim
		if err := c1.Save(ctx, "routed", "8"); !errors.Is(err, ErrClosed) {
			t.Errorf("Save through a removed claim = %v", err)
		}
		if got, _, _ := f.Load(ctx, "routed"); got != "7" {
			t.Errorf("Load = %q", got)
		}
		if err := f.Save(ctx, "routed", "9"); err != nil {
			t.Fatal(err)
		}
		f.Remove(c2)
		if _, _, err := f.Load(ctx, "routed"); !errors.Is(err, ErrNotClaimed) {
			t.Errorf("Load after Remove = %v", err)
		}
		_ = f.Close()
		if err := f.Save(ctx, "routed", "10"); !errors.Is(err, ErrClosed) {
			t.Errorf("Save after Close = %v", err)
		}
	})
}

func TestMemoryClaims(t *testing.T) {
	claimerConformance(t, NewMemory())
}

func TestNATSKVClaims(t *testing.T) {
	js, bucket := testBucket(t)
	s, err := NewNATSKV(t.Context(), js, bucket)
	if err != nil {
		t.Fatal(err)
	}
	claimerConformance(t, s)

	ctx := t.Context()
	kv, _ := js.KeyValue(ctx, bucket)
	// A checkpoint saved before fencing existed (the cursor itself) is
	// where the first claim resumes.
	if _, err := kv.PutString(ctx, "legacy", "1780793376562"); err != nil {
		t.Fatal(err)
	}
	c, err := s.Claim(ctx, "legacy", "a/1")
	if err != nil {
		t.Fatal(err)
	}
	if got, ok, _ := c.Load(ctx, "legacy"); !ok || got != "1780793376562" || c.Epoch() != 1 {
		t.Errorf("claim of a legacy value resumes from %q, %v at epoch %d", got, ok, c.Epoch())
	}
	// A damaged fenced value is corrupt, for Load and for Claim.
	if _, err := kv.Put(ctx, "damaged", []byte(fencedPrefix+"{")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Load(ctx, "damaged"); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Load of a damaged value = %v", err)
	}
	if _, err := s.Claim(ctx, "damaged", "a/1"); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Claim of a damaged value = %v", err)
	}
	// A checkpoint deleted under a claim fences it.
	c, err = s.Claim(ctx, "deleted", "a/1")
	if err != nil {
		t.Fatal(err)
	}
	if err := kv.Delete(ctx, "deleted"); err != nil {
		t.Fatal(err)
	}
	if err := c.Save(ctx, "deleted", "5"); !errors.Is(err, ErrFenced) {
		t.Errorf("Save after the key was deleted = %v", err)
	}
}

// sharedNATSURL is the NATS server with JetStream every machine runs.
const sharedNATSURL = "nats://127.0.0.1:4222"

// testBucket connects to the shared NATS server and names a bucket that is
// deleted after the test.
func testBucket(t *testing.T) (jetstream.JetStream, string) {
	t.Helper()
	nc, err := nats.Connect(sharedNATSURL, nats.Timeout(2*time.Second))
	if err != nil {
		t.Fatalf("NATS on %s: %v", sharedNATSURL, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	bucket := fmt.Sprintf("ckpt_fence_%d", time.Now().UnixNano())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = js.DeleteKeyValue(ctx, bucket)
		nc.Close()
	})
	return js, bucket
}

func BenchmarkNATSKVClaimSave(b *testing.B) {
	nc, err := nats.Connect(sharedNATSURL)
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	bucket := fmt.Sprintf("ckpt_bench_%d", time.Now().UnixNano())
	defer func() { _ = js.DeleteKeyValue(context.Background(), bucket) }()
	s, err := NewNATSKV(b.Context(), js, bucket)
	if err != nil {
		b.Fatal(err)
	}
	c, err := s.Claim(b.Context(), "bench", "a/1")
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := range b.N {
		if err := c.Save(b.Context(), "bench", strconv.Itoa(i)); err != nil {
			b.Fatal(err)
		}
	}
}
