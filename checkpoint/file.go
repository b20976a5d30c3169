package checkpoint

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// File is a Store that keeps one small file per stream in a directory.
//
// Each file is named <stream>.checkpoint and holds one header line and the
// cursor:
//
//	restless-checkpoint 1 <cursor length> <CRC-32C of the cursor, 8 hex digits>
//	<cursor>
//
// Save writes a temporary file in the same directory, fsyncs it, renames it
// over the old file and fsyncs the directory, so after a crash (even a
// power loss) the file holds either the old cursor or the new one, never a
// mix. The length and checksum catch any damage the file system lets
// through; Load reports it as ErrCorrupt instead of reading it as "no
// checkpoint".
//
// One directory belongs to one process: leftover temporary files from a crash
// are removed by NewFile.
type File struct {
	dir string

	mu     sync.Mutex
	locks  map[string]*sync.Mutex // one per stream: saves of a stream never race
	closed bool
}

var _ Store = (*File)(nil)

const (
	fileSuffix  = ".checkpoint"
	fileMagic   = "restless-checkpoint"
	fileVersion = "1"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// NewFile returns a store in dir, creating dir (and its parents) when missing,
// and removes temporary files left by an interrupted Save.
func NewFile(dir string) (*File, error) {
	if dir == "" {
		return nil, errors.New("checkpoint: empty directory")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("checkpoint: create directory: %w", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: read directory: %w", err)
	}
	for _, e := range entries {
		if n := e.Name(); e.Type().IsRegular() && strings.HasPrefix(n, ".") && strings.HasSuffix(n, ".tmp") && strings.Contains(n, fileSuffix) {
			// A temporary file is only ever renamed once complete: a leftover
			// one is an interrupted write that never took effect.
			_ = os.Remove(filepath.Join(dir, n))
		}
	}
	return &File{dir: dir, locks: make(map[string]*sync.Mutex)}, nil
}

// Dir returns the directory the store writes to.
func (f *File) Dir() string { return f.dir }

func (f *File) lock(stream string) (*sync.Mutex, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil, ErrClosed
	}
	l := f.locks[stream]
	if l == nil {
		l = new(sync.Mutex)
		f.locks[stream] = l
	}
	return l, nil
}

func (f *File) path(stream string) string {
	return filepath.Join(f.dir, stream+fileSuffix)
}

// Load reads the checkpoint of stream. A missing file means none was saved;
// a damaged one is an error wrapping ErrCorrupt.
func (f *File) Load(ctx context.Context, stream string) (string, bool, error) {
	if err := ValidateStream(stream); err != nil {
		return "", false, err
	}
	l, err := f.lock(stream)
	if err != nil {
		return "", false, err
	}
	l.Lock()
	defer l.Unlock()
	b, err := os.ReadFile(f.path(stream))
	if errors.Is(err, fs.ErrNotExist) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("checkpoint: stream %q: %w", stream, err)
	}
	cursor, err := decodeFile(b)
	if err != nil {
		return "", false, fmt.Errorf("checkpoint: stream %q: file %s: %w", stream, filepath.Base(f.path(stream)), err)
	}
	return cursor, true, nil
}

// Save atomically replaces the checkpoint of stream with cursor and returns
// once it is on disk.
func (f *File) Save(ctx context.Context, stream, cursor string) error {
	if err := ValidateStream(stream); err != nil {
		return err
	}
	if err := validateCursor(stream, cursor); err != nil {
		return err
	}
	l, err := f.lock(stream)
	if err != nil {
		return err
	}
	l.Lock()
	defer l.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := f.write(stream, encodeFile(cursor)); err != nil {
		return fmt.Errorf("checkpoint: stream %q: save: %w", stream, err)
	}
	return nil
}

func (f *File) write(stream string, content []byte) (err error) {
	tmp, err := os.CreateTemp(f.dir, "."+stream+fileSuffix+".*.tmp")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if _, err = tmp.Write(content); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp.Name(), f.path(stream)); err != nil {
		return err
	}
	// The rename is durable only once the directory entry is.
	d, err := os.Open(f.dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Close marks the store closed. It holds no open files between calls.
func (f *File) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	return nil
}

func encodeFile(cursor string) []byte {
	b := make([]byte, 0, len(fileMagic)+len(cursor)+32)
	b = append(b, fileMagic...)
	b = append(b, ' ')
	b = append(b, fileVersion...)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(len(cursor)), 10)
	b = append(b, ' ')
	b = fmt.Appendf(b, "%08x", crc32.Checksum([]byte(cursor), castagnoli))
	b = append(b, '\n')
	b = append(b, cursor...)
	b = append(b, '\n')
	return b
}

func decodeFile(b []byte) (string, error) {
	nl := bytes.IndexByte(b, '\n')
	if nl < 0 {
		return "", fmt.Errorf("%w: no header line (%d bytes)", ErrCorrupt, len(b))
	}
	fields := strings.Fields(string(b[:nl]))
	if len(fields) != 4 || fields[0] != fileMagic {
		return "", fmt.Errorf("%w: header is not %q", ErrCorrupt, fileMagic+" <version> <length> <crc32c>")
	}
	if fields[1] != fileVersion {
		return "", fmt.Errorf("%w: unknown version %q", ErrCorrupt, fields[1])
	}
	n, err := strconv.Atoi(fields[2])
	if err != nil || n <= 0 || n > maxCursorLen {
		return "", fmt.Errorf("%w: bad length %q", ErrCorrupt, fields[2])
	}
	sum, err := strconv.ParseUint(fields[3], 16, 32)
	if err != nil || len(fields[3]) != 8 {
		return "", fmt.Errorf("%w: bad checksum field %q", ErrCorrupt, fields[3])
	}
	body := b[nl+1:]
	if len(body) != n+1 || body[n] != '\n' {
		return "", fmt.Errorf("%w: cursor is %d bytes, header says %d", ErrCorrupt, max(len(body)-1, 0), n)
	}
	cursor := body[:n]
	if got := crc32.Checksum(cursor, castagnoli); got != uint32(sum) {
		return "", fmt.Errorf("%w: checksum %08x, header says %08x", ErrCorrupt, got, sum)
	}
	return string(cursor), nil
}
