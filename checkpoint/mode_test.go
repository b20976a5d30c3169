package checkpoint

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// TestFileModes: a checkpoint directory the store creates is 0700 and a
// checkpoint file 0600: a cursor is nobody else's to read or change.
func TestFileModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cp")
	st, err := NewFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Save(context.Background(), "orders", "42"); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]os.FileMode{dir: 0o700, filepath.Join(dir, "orders.checkpoint"): 0o600} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm() &^ 0o022; got != want&^0o022 || fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s: mode %v, want %v", filepath.Base(path), fi.Mode().Perm(), want)
		}
	}
}
