package checkpoint

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// storeConformance runs the behaviour every Store promises.
func storeConformance(t *testing.T, s Store) {
	t.Helper()
	ctx := t.Context()
	t.Run("missing", func(t *testing.T) {
		c, ok, err := s.Load(ctx, "never-saved")
		if err != nil || ok || c != "" {
			t.Fatalf("Load = %q, %v, %v; want \"\", false, nil", c, ok, err)
		}
	})
	t.Run("save then load", func(t *testing.T) {
		for _, cur := range []string{"1780793376562", "1780793376563", "cursor with spaces\nand a newline", strings.Repeat("x", 4096)} {
			if err := s.Save(ctx, "orders", cur); err != nil {
				t.Fatal(err)
			}
			got, ok, err := s.Load(ctx, "orders")
			if err != nil || !ok || got != cur {
				t.Fatalf("Load = %q, %v, %v; want %q", got, ok, err, cur)
			}
		}
	})
	t.Run("streams are separate", func(t *testing.T) {
		if err := s.Save(ctx, "a_1", "one"); err != nil {
			t.Fatal(err)
		}
		if err := s.Save(ctx, "b-2", "two"); err != nil {
			t.Fatal(err)
		}
		for stream, want := range map[string]string{"a_1": "one", "b-2": "two"} {
			if got, _, _ := s.Load(ctx, stream); got != want {
				t.Errorf("%s: got %q, want %q", stream, got, want)
			}
		}
	})
	t.Run("bad input", func(t *testing.T) {
		cases := []struct{ stream, cursor, want string }{
			{"", "1", "empty stream name"},
			{"Orders", "1", "not one of"},
			{"../etc", "1", "not one of"},
			{"a/b", "1", "not one of"},
			{strings.Repeat("a", 201), "1", "longer than"},
			{"orders", "", "empty cursor"},
			{"orders", strings.Repeat("x", maxCursorLen+1), "cursor longer"},
		}
		for _, c := range cases {
			err := s.Save(ctx, c.stream, c.cursor)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Save(%q, %d bytes) = %v; want an error containing %q", c.stream, len(c.cursor), err, c.want)
			}
		}
		if _, _, err := s.Load(ctx, "a.b"); err == nil {
			t.Error("Load of an invalid stream name succeeded")
		}
	})
	t.Run("concurrent", func(t *testing.T) {
		var wg sync.WaitGroup
		for g := range 4 {
			wg.Go(func() {
				for i := range 10 {
					if err := s.Save(ctx, fmt.Sprintf("conc-%d", g%2), fmt.Sprint(i)); err != nil {
						t.Error(err)
						return
					}
					if _, _, err := s.Load(ctx, fmt.Sprintf("conc-%d", g%2)); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
	})
	t.Run("closed", func(t *testing.T) {
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if err := s.Save(ctx, "orders", "1"); !errors.Is(err, ErrClosed) {
			t.Errorf("Save after Close = %v; want ErrClosed", err)
		}
		if _, _, err := s.Load(ctx, "orders"); !errors.Is(err, ErrClosed) {
			t.Errorf("Load after Close = %v; want ErrClosed", err)
		}
	})
}

func TestMemory(t *testing.T) {
	m := NewMemory()
	storeConformance(t, m)
	if got := m.Snapshot()["a_1"]; got != "one" {
		t.Errorf("Snapshot()[a_1] = %q", got)
	}
}

func TestFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nested", "checkpoints")
	f, err := NewFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	storeConformance(t, f)
	// Saved data survives a new store on the same directory.
	f2, err := NewFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got, ok, err := f2.Load(t.Context(), "b-2"); err != nil || !ok || got != "two" {
		t.Fatalf("reopened Load = %q, %v, %v", got, ok, err)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".tmp") {
			t.Errorf("temporary file left behind: %s", e.Name())
		}
	}
}

func TestNewFileErrors(t *testing.T) {
	if _, err := NewFile(""); err == nil {
		t.Error("NewFile(\"\") succeeded")
	}
	file := filepath.Join(t.TempDir(), "plain")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := NewFile(filepath.Join(file, "sub")); err == nil {
		t.Error("NewFile under a regular file succeeded")
	}
}

func TestFileRemovesLeftoverTemporaries(t *testing.T) {
	dir := t.TempDir()
	left := filepath.Join(dir, ".orders.checkpoint.12345.tmp")
	other := filepath.Join(dir, "notes.tmp")
	for _, p := range []string{left, other} {
		if err := os.WriteFile(p, []byte("restless-checkpoint 1 5"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := NewFile(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(left); !os.IsNotExist(err) {
		t.Errorf("leftover temporary still there: %v", err)
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf("a file that is not ours was removed: %v", err)
	}
}

func TestFileCorrupt(t *testing.T) {
	good := string(encodeFile("1780793376562"))
	cases := []struct {
		name, content, want string
	}{
		{"empty", "", "no header line"},
		{"torn header", good[:10], "no header line"},
		{"torn cursor", good[:len(good)-4], "header says 13"},
		{"missing final newline", good[:len(good)-1], "header says 13"},
		{"trailing garbage", good + "x", "header says 13"},
		{"flipped byte", strings.Replace(good, "1780793376562", "1780793376569", 1), "checksum"},
		{"not ours", "hello\nworld\n", "header is not"},
		{"future version", strings.Replace(good, " 1 ", " 9 ", 1), "unknown version"},
		{"bad length", strings.Replace(good, " 13 ", " x ", 1), "bad length"},
		{"zero length", "restless-checkpoint 1 0 00000000\n\n", "bad length"},
		{"bad checksum field", "restless-checkpoint 1 13 zz\n1780793376562\n", "bad checksum"},
		{"zeros", strings.Repeat("\x00", 40), "no header line"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "orders.checkpoint"), []byte(c.content), 0o644); err != nil {
				t.Fatal(err)
			}
			f, err := NewFile(dir)
			if err != nil {
				t.Fatal(err)
			}
			cur, ok, err := f.Load(t.Context(), "orders")
			if !errors.Is(err, ErrCorrupt) || ok || cur != "" {
				t.Fatalf("Load = %q, %v, %v; want ErrCorrupt", cur, ok, err)
			}
			if !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), `"orders"`) {
				t.Errorf("error %q should name the stream and contain %q", err, c.want)
			}
			// Saving repairs it.
			if err := f.Save(t.Context(), "orders", "42"); err != nil {
				t.Fatal(err)
			}
			if cur, ok, err := f.Load(t.Context(), "orders"); err != nil || !ok || cur != "42" {
				t.Fatalf("after repair: %q, %v, %v", cur, ok, err)
			}
		})
	}
}

func TestFileSaveHonoursContext(t *testing.T) {
	f, err := NewFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := f.Save(ctx, "orders", "1"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Save with a cancelled context = %v", err)
	}
	if _, ok, _ := f.Load(t.Context(), "orders"); ok {
		t.Fatal("a cancelled Save wrote a checkpoint")
	}
}

func FuzzDecodeFile(f *testing.F) {
	f.Add(encodeFile("1780793376562"))
	f.Add([]byte("restless-checkpoint 1 3 00000000\nabc\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, b []byte) {
		cur, err := decodeFile(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error does not wrap ErrCorrupt: %v", err)
			}
			return
		}
		if string(encodeFile(cur)) != string(b) {
			t.Fatalf("accepted %q which does not round-trip", b)
		}
	})
}

const natsURL = "nats://127.0.0.1:4222"

func TestNATSKV(t *testing.T) {
	nc, err := nats.Connect(natsURL, nats.Timeout(2*time.Second))
	if err != nil {
		t.Fatalf("NATS on %s: %v", natsURL, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	bucket := fmt.Sprintf("ckpt_test_%d", time.Now().UnixNano())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = js.DeleteKeyValue(ctx, bucket)
	})
	s, err := NewNATSKV(t.Context(), js, bucket)
	if err != nil {
		t.Fatal(err)
	}
	// A second store finds the bucket the first created.
	s2, err := NewNATSKV(t.Context(), js, bucket)
	if err != nil {
		t.Fatal(err)
	}
	storeConformance(t, s)
	if got, ok, err := s2.Load(t.Context(), "b-2"); err != nil || !ok || got != "two" {
		t.Fatalf("second store Load = %q, %v, %v", got, ok, err)
	}
	// An empty value (written by someone else) is corrupt, not "none".
	kv, _ := js.KeyValue(t.Context(), bucket)
	if _, err := kv.Put(t.Context(), "emptied", nil); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s2.Load(t.Context(), "emptied"); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Load of an empty value = %v; want ErrCorrupt", err)
	}
}

func TestNewNATSKVErrors(t *testing.T) {
	if _, err := NewNATSKV(t.Context(), nil, "b"); err == nil {
		t.Error("nil JetStream accepted")
	}
	nc, err := nats.Connect(natsURL, nats.Timeout(2*time.Second))
	if err != nil {
		t.Fatalf("NATS on %s: %v", natsURL, err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	for _, b := range []string{"", "bad bucket name", "a.b"} {
		if _, err := NewNATSKV(t.Context(), js, b); err == nil {
			t.Errorf("bucket %q accepted", b)
		}
	}
}

func ExampleFile() {
	dir, _ := os.MkdirTemp("", "checkpoints")
	defer os.RemoveAll(dir)
	store, err := NewFile(dir)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer store.Close()
	ctx := context.Background()
	_, ok, _ := store.Load(ctx, "orders")
	fmt.Println("saved before:", ok)
	_ = store.Save(ctx, "orders", "1780793376562")
	cursor, _, _ := store.Load(ctx, "orders")
	fmt.Println("resume after:", cursor)
	// Output:
	// saved before: false
	// resume after: 1780793376562
}
