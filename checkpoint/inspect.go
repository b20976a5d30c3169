package checkpoint

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// ReadFileCheckpoint reads stream's checkpoint in dir without opening a store:
// it neither creates dir nor removes a temporary file (which may be a running
// daemon's save in progress), so it may be used while a daemon runs.
func ReadFileCheckpoint(ctx context.Context, dir, stream string) (cursor string, ok bool, err error) {
	f := &File{dir: dir, streams: make(map[string]*fileStream)}
	return f.Load(ctx, stream)
}

// FileCheckpointPath is the file of stream's checkpoint in dir.
func FileCheckpointPath(dir, stream string) string {
	return filepath.Join(dir, stream+fileSuffix)
}

// FileStreams lists, sorted, the streams that have a checkpoint file in dir
// (none when dir does not exist).
func FileStreams(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("checkpoint: read directory: %w", err)
	}
	var out []string
	for _, e := range entries {
		n := e.Name()
		if e.Type().IsRegular() && strings.HasSuffix(n, fileSuffix) && !strings.HasPrefix(n, ".") {
			if s := strings.TrimSuffix(n, fileSuffix); ValidateStream(s) == nil {
				out = append(out, s)
			}
		}
	}
	sort.Strings(out)
	return out, nil
}

// RemoveFileCheckpoint removes stream's checkpoint file from dir, durably; the
// caller holds the directory's lock (LockDir). No file is not an error.
func RemoveFileCheckpoint(dir, stream string) error {
	if err := ValidateStream(stream); err != nil {
		return err
	}
	if err := os.Remove(FileCheckpointPath(dir, stream)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("checkpoint: remove: %w", err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("checkpoint: remove: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("checkpoint: remove: sync directory: %w", err)
	}
	return nil
}

// Delete removes stream's checkpoint from the bucket (the caller holds the
// stream's lease). No checkpoint is not an error.
func (n *NATSKV) Delete(ctx context.Context, stream string) error {
	if err := ValidateStream(stream); err != nil {
		return err
	}
	if n.closed.Load() {
		return ErrClosed
	}
	if err := n.kv.Delete(ctx, stream); err != nil {
		return fmt.Errorf("checkpoint: nats kv: stream %q: delete: %w", stream, err)
	}
	return nil
}
