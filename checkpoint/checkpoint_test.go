package checkpoint

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/restless-stream/ingest/internal/testenv"
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
	f.Add(slotFile(t2slot{1, "a"}, t2slot{2, "b"}))
	f.Add(slotFile(t2slot{7, "1780793376562"}, t2slot{}))
	f.Fuzz(func(t *testing.T, b []byte) {
		cur, err := decodeFile(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error does not wrap ErrCorrupt: %v", err)
			}
			return
		}
		if cur == "" {
			t.Fatal("accepted an empty cursor")
		}
		if len(b) == slotFileSize && bytes.HasPrefix(b, []byte(slotPreamble)) {
			// The cursor is a record that encodes back to itself, in one
			// of the slots.
			for _, off := range []int{slot0Offset, slot1Offset} {
				if seq, c, err := decodeSlot(b[off : off+slotSize]); err == nil && c == cur && bytes.HasPrefix(b[off:], encodeSlot(seq, c)) {
					return
				}
			}
			t.Fatalf("returned %q, which no slot holds", cur)
		}
		if string(encodeFile(cur)) != string(b) {
			t.Fatalf("accepted %q which does not round-trip", b)
		}
	})
}

// t2slot is a slot's record in a test; seq 0 leaves the slot empty.
type t2slot struct {
	seq    uint64
	cursor string
}

// slotFile builds a two-slot file.
func slotFile(s0, s1 t2slot) []byte {
	b := make([]byte, slotFileSize)
	copy(b, slotPreamble)
	if s0.seq != 0 {
		copy(b[slot0Offset:], encodeSlot(s0.seq, s0.cursor))
	}
	if s1.seq != 0 {
		copy(b[slot1Offset:], encodeSlot(s1.seq, s1.cursor))
	}
	return b
}

// TestFileSlots follows saves through the two slots, reading the file back
// with a second store after each one.
func TestFileSlots(t *testing.T) {
	dir := t.TempDir()
	f, err := NewFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	reader, err := NewFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "orders.checkpoint")
	for i := 1; i <= 5; i++ {
		cursor := fmt.Sprintf("evt-%d%s", i, strings.Repeat("x", i*7%13))
		if err := f.Save(t.Context(), "orders", cursor); err != nil {
			t.Fatal(err)
		}
		if got, ok, err := reader.Load(t.Context(), "orders"); err != nil || !ok || got != cursor {
			t.Fatalf("save %d: Load = %q, %v, %v; want %q", i, got, ok, err, cursor)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) != slotFileSize || !bytes.HasPrefix(b, []byte(slotPreamble)) {
			t.Fatalf("save %d: file is %d bytes starting %q", i, len(b), b[:min(len(b), 24)])
		}
		// Save i went to slot (i+1)%2 with sequence i.
		off := slot0Offset
		if i%2 == 0 {
			off = slot1Offset
		}
		if seq, c, err := decodeSlot(b[off : off+slotSize]); err != nil || seq != uint64(i) || c != cursor {
			t.Fatalf("save %d: slot at %d = %d, %q, %v", i, off, seq, c, err)
		}
	}
}

// TestFileTornSlot: a slot damaged in the middle of a write leaves the other
// one, the cursor saved before, for Load; with both damaged Load reports
// ErrCorrupt, and a save remakes the file.
func TestFileTornSlot(t *testing.T) {
	cases := []struct {
		name    string
		content []byte
		want    string // cursor, or "" for ErrCorrupt
		errText string
	}{
		{"newer slot 1 torn", tear(slotFile(t2slot{3, "three"}, t2slot{4, "four"}), slot1Offset+30), "three", ""},
		{"newer slot 0 torn", tear(slotFile(t2slot{5, "five"}, t2slot{4, "four"}), slot0Offset+30), "four", ""},
		{"newer slot 0 header torn", tear(slotFile(t2slot{5, "five"}, t2slot{4, "four"}), slot0Offset+5), "four", ""},
		{"second save never made", slotFile(t2slot{1, "one"}, t2slot{}), "one", ""},
		{"higher sequence wins from slot 1", slotFile(t2slot{8, "eight"}, t2slot{9, "nine"}), "nine", ""},
		{"higher sequence wins from slot 0", slotFile(t2slot{10, "ten"}, t2slot{9, "nine"}), "ten", ""},
		{"flipped byte in the newer cursor", bytes.Replace(slotFile(t2slot{1, "abc"}, t2slot{2, "abd"}), []byte("\nabd"), []byte("\nabx"), 1), "abc", ""},
		{"both slots empty", slotFile(t2slot{}, t2slot{}), "", "no valid slot: slot 0: empty; slot 1: empty"},
		{"both torn", tear(tear(slotFile(t2slot{1, "one"}, t2slot{2, "two"}), slot1Offset+3), slot0Offset+3), "", "no valid slot"},
		{"file cut short", slotFile(t2slot{1, "one"}, t2slot{2, "two"})[:5000], "", fmt.Sprintf("two-slot file is 5000 bytes, not %d", slotFileSize)},
		{"sequence zero", bytes.Replace(slotFile(t2slot{1, "one"}, t2slot{}), []byte("checkpoint 1 "), []byte("checkpoint 0 "), 1), "", "bad sequence"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "orders.checkpoint"), c.content, 0o644); err != nil {
				t.Fatal(err)
			}
			f, err := NewFile(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			cur, ok, err := f.Load(t.Context(), "orders")
			if c.want != "" {
				if err != nil || !ok || cur != c.want {
					t.Fatalf("Load = %q, %v, %v; want %q", cur, ok, err, c.want)
				}
				return
			}
			if !errors.Is(err, ErrCorrupt) || ok || !strings.Contains(err.Error(), c.errText) {
				t.Fatalf("Load = %q, %v, %v; want ErrCorrupt with %q", cur, ok, err, c.errText)
			}
			if err := f.Save(t.Context(), "orders", "42"); err != nil {
				t.Fatal(err)
			}
			if cur, ok, err := f.Load(t.Context(), "orders"); err != nil || !ok || cur != "42" {
				t.Fatalf("after repair: %q, %v, %v", cur, ok, err)
			}
		})
	}
}

// tear overwrites b from off to the end of its 512-byte sector with
// garbage, as a write cut off by a crash may leave it.
func tear(b []byte, off int) []byte {
	b = bytes.Clone(b)
	for i := off; i < (off/512+1)*512; i++ {
		b[i] = byte(i*7 + 1)
	}
	return b
}

// TestFileLongCursorAndVersion1: a cursor too long for a slot is saved in
// the version 1 format, which Load reads, and the next short one makes a
// two-slot file again; a version 1 file left by an earlier build loads and
// is replaced by the first save.
func TestFileLongCursorAndVersion1(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "orders.checkpoint")
	if err := os.WriteFile(path, encodeFile("from-v1"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := NewFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if cur, ok, err := f.Load(t.Context(), "orders"); err != nil || !ok || cur != "from-v1" {
		t.Fatalf("version 1 Load = %q, %v, %v", cur, ok, err)
	}
	steps := []struct {
		cursor string
		slots  bool
	}{
		{"short-1", true},
		{"short-2", true},
		{strings.Repeat("L", maxSlotCursor+1), false},
		{"short-3", true},
		{strings.Repeat("m", maxSlotCursor), true},
		{"short-4", true},
	}
	for i, s := range steps {
		if err := f.Save(t.Context(), "orders", s.cursor); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := bytes.HasPrefix(b, []byte(slotPreamble)); got != s.slots {
			t.Fatalf("step %d: two-slot file = %v, want %v", i, got, s.slots)
		}
		if cur, ok, err := f.Load(t.Context(), "orders"); err != nil || !ok || cur != s.cursor {
			t.Fatalf("step %d: Load = %.20q, %v, %v", i, cur, ok, err)
		}
	}
}

func TestFileClose(t *testing.T) {
	f, err := NewFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Save(t.Context(), "orders", "1"); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
	if err := f.Save(t.Context(), "orders", "2"); !errors.Is(err, ErrClosed) {
		t.Fatalf("Save after Close = %v", err)
	}
	if _, _, err := f.Load(t.Context(), "orders"); !errors.Is(err, ErrClosed) {
		t.Fatalf("Load after Close = %v", err)
	}
}

// BenchmarkFileSave is the durable save that follows every acknowledged
// batch: one write into a slot and one fdatasync.
func BenchmarkFileSave(b *testing.B) {
	f, err := NewFile(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	ctx := context.Background()
	i := 0
	for b.Loop() {
		i++
		if err := f.Save(ctx, "orders", "1780793376562-"+strconv.Itoa(i)); err != nil {
			b.Fatal(err)
		}
	}
}

// sharedJetStream connects to the shared NATS server (without it the test
// is skipped, or fails under CI). The connection closes when the test ends,
// after the cleanups the test registers later (they delete its buckets).
func sharedJetStream(t *testing.T) jetstream.JetStream {
	t.Helper()
	url := testenv.NATS(t)
	nc, err := nats.Connect(url, nats.Timeout(2*time.Second))
	if err != nil {
		t.Fatalf("NATS on %s: %v", url, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

func TestNATSKV(t *testing.T) {
	js := sharedJetStream(t)
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
	js := sharedJetStream(t)
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
