package checkpoint

import (
	"bytes"
	"context"
	"encoding/json"
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

// File is a Store that keeps one small file per stream in a directory,
// named <stream>.checkpoint.
//
// A file has two slots, so that a save overwrites one of them in place and
// needs one write and one fdatasync, the cheapest durable write a file system
// offers (a save happens after every acknowledged batch):
//
//	offset 0:    restless-checkpoint 2\n            (written once, when the file is made)
//	offset 4096: slot 0
//	offset 8192: slot 1, to 12288
//
// Each part has a page of its own, so a write torn anywhere within its page
// damages nothing else. A slot holds one record, the rest of it zeros (a
// save writes the whole slot):
//
//	restless-checkpoint <sequence> <cursor length> <CRC-32C, 8 hex digits>\n<cursor>\n
//
// where the checksum covers the sequence number in decimal, a space and the
// cursor. Saves alternate between the slots with a rising sequence number, so
// the slot not being written always holds the previous cursor: after a crash
// (even a power loss) in the middle of a write, Load finds the torn slot's
// checksum wrong and returns the other one, the old cursor. Load returns the
// valid slot with the higher sequence number; a file with no valid slot is
// reported as ErrCorrupt instead of being read as "no checkpoint".
//
// A file is made (and, when damaged, remade) by writing a temporary file,
// fsyncing it, renaming it over the old one and fsyncing the directory; the
// store then keeps it open for the saves that follow. A cursor too long for a
// slot (over 4,000 bytes; event ids are far shorter) is saved the same way in
// the single-record format of version 1,
//
//	restless-checkpoint 1 <cursor length> <CRC-32C of the cursor, 8 hex digits>\n<cursor>\n
//
// which Load reads too.
//
// A save with a document (SaveDocument) is made the same way, in the
// single-record format of version 3:
//
//	restless-checkpoint 3 <cursor length> <document length> <CRC-32C, 8 hex digits>\n<cursor>\n<document>\n
//
// where the checksum covers the cursor, a newline and the document (length
// 0: no document). Versions 1 and 2 load with no document.
//
// One directory belongs to one process: leftover temporary files from a crash
// are removed by NewFile. As the store keeps each file open between saves, a
// checkpoint file is edited or removed only while no store uses it.
type File struct {
	dir string

	mu      sync.Mutex
	streams map[string]*fileStream // one per stream: saves of a stream never race
	closed  bool
}

// fileStream is the state of one stream's file.
type fileStream struct {
	sync.Mutex
	f      *os.File // the two-slot file kept open for saves; nil when none is
	seq    uint64   // sequence number of the last record written to f
	closed bool     // set by Close: a Save that waited for the lock ends
}

var _ Store = (*File)(nil)

const (
	fileSuffix  = ".checkpoint"
	fileMagic   = "restless-checkpoint"
	fileVersion = "1"

	// The two-slot format (version 2). Each part has a page of its own, so
	// that a write torn at any granularity up to a page leaves the preamble
	// and the other slot alone.
	slotPreamble = fileMagic + " 2\n"
	slotSize     = 4096 // one page
	slot0Offset  = slotSize
	slot1Offset  = 2 * slotSize
	slotFileSize = 3 * slotSize
	maxSlotHead  = 64 // "restless-checkpoint " + 20 + 1 + 5 + 1 + 8 + "\n", rounded up
	// maxSlotCursor is the longest cursor a slot holds.
	maxSlotCursor = slotSize - maxSlotHead - 1
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// NewFile returns a store in dir, creating dir (and its parents) when missing,
// and removes temporary files left by an interrupted Save.
func NewFile(dir string) (*File, error) {
	if dir == "" {
		return nil, errors.New("checkpoint: empty directory")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
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
	return &File{dir: dir, streams: make(map[string]*fileStream)}, nil
}

// Dir returns the directory the store writes to.
func (f *File) Dir() string { return f.dir }

func (f *File) lock(stream string) (*fileStream, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil, ErrClosed
	}
	l := f.streams[stream]
	if l == nil {
		l = new(fileStream)
		f.streams[stream] = l
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
	cursor, _, err := decodeFileDocument(b)
	if err != nil {
		return "", false, fmt.Errorf("checkpoint: stream %q: file %s: %w", stream, filepath.Base(f.path(stream)), err)
	}
	return cursor, true, nil
}

// LoadDocument is Load with the document saved with the cursor (nil when
// none was, or the file predates documents).
func (f *File) LoadDocument(ctx context.Context, stream string) (string, []byte, bool, error) {
	if err := ValidateStream(stream); err != nil {
		return "", nil, false, err
	}
	l, err := f.lock(stream)
	if err != nil {
		return "", nil, false, err
	}
	l.Lock()
	defer l.Unlock()
	b, err := os.ReadFile(f.path(stream))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil, false, nil
	}
	if err != nil {
		return "", nil, false, fmt.Errorf("checkpoint: stream %q: %w", stream, err)
	}
	cursor, doc, err := decodeFileDocument(b)
	if err != nil {
		return "", nil, false, fmt.Errorf("checkpoint: stream %q: file %s: %w", stream, filepath.Base(f.path(stream)), err)
	}
	return cursor, doc, true, nil
}

// SaveDocument replaces the checkpoint of stream with cursor and doc (nil:
// none) in one atomic write (a new file renamed over the old one): after a
// crash Load returns either both or the checkpoint saved before.
func (f *File) SaveDocument(ctx context.Context, stream, cursor string, doc []byte) error {
	if doc == nil {
		return f.Save(ctx, stream, cursor)
	}
	if err := ValidateStream(stream); err != nil {
		return err
	}
	if err := validateCursor(stream, cursor); err != nil {
		return err
	}
	if err := validateDocument(stream, doc); err != nil {
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
	if l.closed {
		return ErrClosed
	}
	l.release() // the next Save without a document makes a two-slot file anew
	if err := f.replace(stream, encodeV3(cursor, doc)); err != nil {
		return fmt.Errorf("checkpoint: stream %q: save: %w", stream, err)
	}
	return nil
}

// Save replaces the checkpoint of stream with cursor and returns once it is
// on disk: after a crash Load returns either cursor or the one saved before.
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
	if l.closed {
		return ErrClosed
	}
	if err := f.save(l, stream, cursor); err != nil {
		return fmt.Errorf("checkpoint: stream %q: save: %w", stream, err)
	}
	return nil
}

func (f *File) save(l *fileStream, stream, cursor string) error {
	if len(cursor) > maxSlotCursor {
		l.release()
		return f.replace(stream, encodeFile(cursor))
	}
	if l.f == nil {
		// Make a new file with the cursor in slot 0, and keep it open.
		b := make([]byte, slotFileSize)
		copy(b, slotPreamble)
		copy(b[slot0Offset:], encodeSlot(1, cursor))
		if err := f.replace(stream, b); err != nil {
			return err
		}
		file, err := os.OpenFile(f.path(stream), os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		l.f, l.seq = file, 1
		return nil
	}
	seq := l.seq + 1
	off := int64(slot0Offset)
	if seq%2 == 0 {
		off = slot1Offset
	}
	// The whole slot, padded with zeros, so no tail of a longer record
	// stays behind it.
	slot := make([]byte, slotSize)
	copy(slot, encodeSlot(seq, cursor))
	if _, err := l.f.WriteAt(slot, off); err != nil {
		l.release() // the next save makes the file anew
		return err
	}
	if err := fdatasync(l.f); err != nil {
		// After a failed flush the page cache may have dropped the write
		// and cleared the error: nothing about the file can be trusted.
		l.release()
		return err
	}
	l.seq = seq
	return nil
}

// release closes the kept file, if any.
func (l *fileStream) release() {
	if l.f != nil {
		_ = l.f.Close()
		l.f = nil
	}
}

// replace writes content to a temporary file, fsyncs it, renames it over the
// stream's file and fsyncs the directory.
func (f *File) replace(stream string, content []byte) (err error) {
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

// Close marks the store closed and closes the files it kept open.
func (f *File) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil
	}
	f.closed = true
	for _, l := range f.streams {
		l.Lock()
		l.release()
		l.closed = true
		l.Unlock()
	}
	return nil
}

// decodeFileDocument returns the cursor and document a file holds, in any
// format; versions 1 and 2 hold no document.
func decodeFileDocument(b []byte) (string, []byte, error) {
	if bytes.HasPrefix(b, []byte(fileMagic+" 3 ")) {
		return decodeV3(b)
	}
	cursor, err := decodeFile(b)
	return cursor, nil, err
}

func v3Sum(cursor string, doc []byte) uint32 {
	c := crc32.Update(0, castagnoli, []byte(cursor))
	c = crc32.Update(c, castagnoli, []byte{'\n'})
	return crc32.Update(c, castagnoli, doc)
}

func encodeV3(cursor string, doc []byte) []byte {
	b := make([]byte, 0, len(fileMagic)+len(cursor)+len(doc)+48)
	b = append(b, fileMagic...)
	b = append(b, " 3 "...)
	b = strconv.AppendInt(b, int64(len(cursor)), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(len(doc)), 10)
	b = append(b, ' ')
	b = fmt.Appendf(b, "%08x", v3Sum(cursor, doc))
	b = append(b, '\n')
	b = append(b, cursor...)
	b = append(b, '\n')
	b = append(b, doc...)
	b = append(b, '\n')
	return b
}

func decodeV3(b []byte) (string, []byte, error) {
	nl := bytes.IndexByte(b[:min(len(b), 128)], '\n')
	if nl < 0 {
		return "", nil, fmt.Errorf("%w: no header line (%d bytes)", ErrCorrupt, len(b))
	}
	fields := strings.Fields(string(b[:nl]))
	if len(fields) != 5 || fields[0] != fileMagic || fields[1] != "3" {
		return "", nil, fmt.Errorf("%w: header is not %q", ErrCorrupt, fileMagic+" 3 <cursor length> <document length> <crc32c>")
	}
	n, err := strconv.Atoi(fields[2])
	if err != nil || n <= 0 || n > maxCursorLen {
		return "", nil, fmt.Errorf("%w: bad cursor length %q", ErrCorrupt, fields[2])
	}
	m, err := strconv.Atoi(fields[3])
	if err != nil || m < 0 || m > MaxDocumentBytes {
		return "", nil, fmt.Errorf("%w: bad document length %q", ErrCorrupt, fields[3])
	}
	sum, err := strconv.ParseUint(fields[4], 16, 32)
	if err != nil || len(fields[4]) != 8 {
		return "", nil, fmt.Errorf("%w: bad checksum field %q", ErrCorrupt, fields[4])
	}
	body := b[nl+1:]
	if len(body) != n+1+m+1 || body[n] != '\n' || body[n+1+m] != '\n' {
		return "", nil, fmt.Errorf("%w: %d bytes after the header, which says %d + %d", ErrCorrupt, len(body), n, m)
	}
	cursor, doc := string(body[:n]), body[n+1:n+1+m]
	if got := v3Sum(cursor, doc); got != uint32(sum) {
		return "", nil, fmt.Errorf("%w: checksum %08x, header says %08x", ErrCorrupt, got, sum)
	}
	if m == 0 {
		doc = nil
	} else if !json.Valid(doc) {
		return "", nil, fmt.Errorf("%w: the document is not valid JSON", ErrCorrupt)
	}
	return cursor, bytes.Clone(doc), nil
}

// decodeFile returns the cursor a file holds, in either format.
func decodeFile(b []byte) (string, error) {
	if !bytes.HasPrefix(b, []byte(slotPreamble)) {
		return decodeV1(b)
	}
	if len(b) != slotFileSize {
		return "", fmt.Errorf("%w: two-slot file is %d bytes, not %d", ErrCorrupt, len(b), slotFileSize)
	}
	seq0, cur0, err0 := decodeSlot(b[slot0Offset : slot0Offset+slotSize])
	seq1, cur1, err1 := decodeSlot(b[slot1Offset : slot1Offset+slotSize])
	switch {
	case err0 == nil && (err1 != nil || seq0 > seq1):
		return cur0, nil
	case err1 == nil:
		return cur1, nil
	}
	return "", fmt.Errorf("%w: no valid slot: slot 0: %v; slot 1: %v", ErrCorrupt, err0, err1)
}

// encodeSlot returns the record of a slot.
func encodeSlot(seq uint64, cursor string) []byte {
	b := make([]byte, 0, maxSlotHead+len(cursor)+1)
	b = append(b, fileMagic...)
	b = append(b, ' ')
	b = strconv.AppendUint(b, seq, 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(len(cursor)), 10)
	b = append(b, ' ')
	b = fmt.Appendf(b, "%08x", slotSum(seq, cursor))
	b = append(b, '\n')
	b = append(b, cursor...)
	b = append(b, '\n')
	return b
}

func slotSum(seq uint64, cursor string) uint32 {
	var n [20]byte
	c := crc32.Update(0, castagnoli, strconv.AppendUint(n[:0], seq, 10))
	c = crc32.Update(c, castagnoli, []byte{' '})
	return crc32.Update(c, castagnoli, []byte(cursor))
}

// decodeSlot reads the record of a slot. An error is never nil for a slot
// that was never written (all zeros) or was torn.
func decodeSlot(b []byte) (uint64, string, error) {
	if b[0] == 0 {
		return 0, "", errors.New("empty")
	}
	nl := bytes.IndexByte(b[:min(len(b), maxSlotHead)], '\n')
	if nl < 0 {
		return 0, "", errors.New("no header line")
	}
	fields := strings.Fields(string(b[:nl]))
	if len(fields) != 4 || fields[0] != fileMagic {
		return 0, "", fmt.Errorf("header is not %q", fileMagic+" <sequence> <length> <crc32c>")
	}
	seq, err := strconv.ParseUint(fields[1], 10, 64)
	if err != nil || seq == 0 {
		return 0, "", fmt.Errorf("bad sequence %q", fields[1])
	}
	n, err := strconv.Atoi(fields[2])
	if err != nil || n <= 0 || n > maxSlotCursor {
		return 0, "", fmt.Errorf("bad length %q", fields[2])
	}
	sum, err := strconv.ParseUint(fields[3], 16, 32)
	if err != nil || len(fields[3]) != 8 {
		return 0, "", fmt.Errorf("bad checksum field %q", fields[3])
	}
	body := b[nl+1:]
	if len(body) < n+1 || body[n] != '\n' {
		return 0, "", fmt.Errorf("cursor does not end after the %d bytes the header says", n)
	}
	cursor := string(body[:n])
	if got := slotSum(seq, cursor); got != uint32(sum) {
		return 0, "", fmt.Errorf("checksum %08x, header says %08x", got, sum)
	}
	return seq, cursor, nil
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

func decodeV1(b []byte) (string, error) {
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
