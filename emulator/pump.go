package emulator

import (
	"bufio"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/coder/websocket"
)

// outEvent is one event ready for the wire.
type outEvent struct {
	id, typ string
	b       []byte
}

// eventSource produces a connection's events.
type eventSource interface {
	// next fills buf with the events ready now. When none is ready it returns
	// n == 0 and what to wait for before asking again; done reports the end
	// of the stream.
	next(buf []outEvent) (n int, wait wakeup, done bool)
	// stop releases the source's resources.
	stop()
}

// wakeup is what a source without ready events waits for; a nil channel never fires.
type wakeup struct {
	ch    <-chan struct{}
	timer <-chan time.Time
}

// frameWriter puts events on one connection.
type frameWriter interface {
	write(ev outEvent) error
	// writePartial writes the first half of ev and pushes it out.
	writePartial(ev outEvent) error
	flush() error
	keepalive() error
}

// errAbort asks the handler to cut the connection without a proper end.
var errAbort = errors.New("emulator: connection cut by fault")

// pump copies events from src to fw until the stream ends, the client leaves
// (ctx) or a fault ends the connection. keepalive 0 disables keepalives.
func pump(ctx context.Context, fw frameWriter, src eventSource, f *Faults, keepalive time.Duration) error {
	defer src.stop()
	var tick <-chan time.Time
	if keepalive > 0 {
		t := time.NewTicker(keepalive)
		defer t.Stop()
		tick = t.C
	}
	buf := make([]outEvent, 128)
	sent, patches := 0, 0
	for {
		if f != nil && f.Stall && sent >= f.StallAfter {
			if err := fw.flush(); err != nil {
				return err
			}
			<-ctx.Done()
			return nil
		}
		n, wait, done := src.next(buf)
		if n == 0 {
			if err := fw.flush(); err != nil || done {
				return err
			}
			select {
			case <-wait.ch:
			case <-wait.timer:
			case <-tick:
				if err := fw.keepalive(); err != nil {
					return err
				}
			case <-ctx.Done():
				return nil
			}
			continue
		}
		for _, ev := range buf[:n] {
			if f == nil {
				if err := fw.write(ev); err != nil {
					return err
				}
				sent++
				continue
			}
			if f.Stall && sent >= f.StallAfter {
				break
			}
			if f.CloseAfter > 0 || f.CloseMidEvent {
				if sent == f.CloseAfter {
					if f.CloseMidEvent {
						if err := fw.writePartial(ev); err != nil {
							return err
						}
						return errAbort
					}
					if err := fw.flush(); err != nil {
						return err
					}
					return errFaultClose
				}
			}
			k := sent + 1
			out := ev
			if every(f.BadSignatureEvery, k) {
				out.b = corruptSignature(out.b)
			}
			if f.CorruptPatchEvery > 0 {
				// Counted over the events that carry a patch.
				if p := corruptPatch(out.b); len(p) != len(out.b) {
					patches++
					if every(f.CorruptPatchEvery, patches) {
						out.b = p
					}
				}
			}
			if every(f.MalformedEvery, k) {
				out.b = malformed(out.b)
			}
			if every(f.OversizedEvery, k) {
				out.b = oversize(out.b, f.OversizedBytes)
			}
			if err := fw.write(out); err != nil {
				return err
			}
			if every(f.RepeatEvery, k) {
				if err := fw.write(out); err != nil {
					return err
				}
			}
			sent++
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

// sseWriter writes the PROTOCOL.md §2 SSE framing: id, event, one data line.
type sseWriter struct {
	ctx  context.Context
	bw   *bufio.Writer
	gz   *gzip.Writer
	rc   *http.ResponseController
	drip bool
	wait time.Duration
	line []byte
}

func newSSEWriter(ctx context.Context, w http.ResponseWriter, f *Faults) *sseWriter {
	s := &sseWriter{ctx: ctx, rc: http.NewResponseController(w)}
	var dst io.Writer = w
	if f != nil && f.Gzip {
		s.gz = gzip.NewWriter(w)
		dst = s.gz
	}
	if f != nil && f.SlowDrip {
		s.drip = true
		s.wait = time.Duration(f.DripDelayMS) * time.Millisecond
	}
	s.bw = bufio.NewWriterSize(dst, 64<<10)
	return s
}

func (s *sseWriter) frame(ev outEvent) []byte {
	s.line = append(s.line[:0], "id: "...)
	s.line = append(s.line, ev.id...)
	s.line = append(s.line, "\nevent: "...)
	s.line = append(s.line, ev.typ...)
	s.line = append(s.line, "\ndata: "...)
	s.line = append(s.line, ev.b...)
	return append(s.line, "\n\n"...)
}

func (s *sseWriter) write(ev outEvent) error {
	if s.drip {
		return s.dripBytes(s.frame(ev))
	}
	bw := s.bw
	bw.WriteString("id: ")
	bw.WriteString(ev.id)
	bw.WriteString("\nevent: ")
	bw.WriteString(ev.typ)
	bw.WriteString("\ndata: ")
	bw.Write(ev.b)
	_, err := bw.WriteString("\n\n")
	return err
}

func (s *sseWriter) dripBytes(b []byte) error {
	for i := range b {
		s.bw.WriteByte(b[i])
		if err := s.flush(); err != nil {
			return err
		}
		if s.wait > 0 {
			t := time.NewTimer(s.wait)
			select {
			case <-t.C:
			case <-s.ctx.Done():
				t.Stop()
				return s.ctx.Err()
			}
		}
	}
	return nil
}

func (s *sseWriter) writePartial(ev outEvent) error {
	b := s.frame(ev)
	s.bw.Write(b[:len(b)/2])
	return s.flush()
}

func (s *sseWriter) flush() error {
	if err := s.bw.Flush(); err != nil {
		return err
	}
	if s.gz != nil {
		if err := s.gz.Flush(); err != nil {
			return err
		}
	}
	return s.rc.Flush()
}

func (s *sseWriter) keepalive() error {
	s.bw.WriteString(": keepalive\n\n")
	return s.flush()
}

// close ends a gzip body properly.
func (s *sseWriter) close() error {
	if err := s.bw.Flush(); err != nil {
		return err
	}
	if s.gz != nil {
		return s.gz.Close()
	}
	return nil
}

// wsWriter sends one text message per event; pings run separately.
type wsWriter struct {
	ctx context.Context
	c   *websocket.Conn
}

func (w *wsWriter) write(ev outEvent) error {
	return w.c.Write(w.ctx, websocket.MessageText, ev.b)
}

// writePartial sends the first half of ev as a non-final frame. A control
// frame pushes the buffered fragment onto the wire; its pong is not awaited.
func (w *wsWriter) writePartial(ev outEvent) error {
	mw, err := w.c.Writer(w.ctx, websocket.MessageText)
	if err != nil {
		return err
	}
	if _, err := mw.Write(ev.b[:len(ev.b)/2]); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(w.ctx, 50*time.Millisecond)
	defer cancel()
	_ = w.c.Ping(ctx)
	return nil
}

func (w *wsWriter) flush() error     { return nil }
func (w *wsWriter) keepalive() error { return nil }
