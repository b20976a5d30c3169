package checkpoint

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// TestLeaseIsExclusive: a second holder of a stream's lease is refused with the
// first one's name; after Release it can take it; the refresh keeps it.
func TestLeaseIsExclusive(t *testing.T) {
	js := sharedJetStream(t)
	bucket := fmt.Sprintf("lease_test_%d", time.Now().UnixNano())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = js.DeleteKeyValue(ctx, LeaseBucket(bucket))
	})
	a, err := AcquireLease(t.Context(), js, bucket, []string{"orders", "users"}, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	if !strings.Contains(a.Holder(), fmt.Sprintf("pid %d on host %s", os.Getpid(), host)) {
		t.Errorf("holder = %q", a.Holder())
	}
	// "extra" is free but "users" is not: nothing is taken.
	_, err = AcquireLease(t.Context(), js, bucket, []string{"extra", "users"}, 3*time.Second)
	var held *HeldError
	if !errors.As(err, &held) || held.Holder != a.Holder() || !strings.Contains(held.What, "stream users") {
		t.Fatalf("second AcquireLease = %v, want a *HeldError naming %q", err, a.Holder())
	}
	kv, err := js.KeyValue(t.Context(), LeaseBucket(bucket))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Get(t.Context(), "extra"); err == nil {
		t.Error("the refused lease left its key for extra")
	}
	// Past the TTL, the refresh has kept the lease.
	time.Sleep(4 * time.Second)
	if _, err := AcquireLease(t.Context(), js, bucket, []string{"orders"}, 3*time.Second); !errors.Is(err, ErrHeld) {
		t.Fatalf("AcquireLease after the TTL = %v, want ErrHeld: the refresh should keep it", err)
	}
	select {
	case <-a.Lost():
		t.Fatalf("lease lost: %v", a.Err())
	default:
	}
	a.Release()
	b, err := AcquireLease(t.Context(), js, bucket, []string{"orders", "users"}, 3*time.Second)
	if err != nil {
		t.Fatalf("AcquireLease after Release: %v", err)
	}
	b.Release()
}
