package emulator

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash"
	"strconv"
	"time"
)

// FirehoseConfig configures a firehose: a stream of synthetic signed update
// events for load tests, generated for each connection on its own, so that
// every connection sees every event and a reconnecting one resumes exactly.
//
// A connection without a cursor starts at event 1; one with a cursor (or a
// since) right after it. Event n (1, 2, ...) has event_id StartID+n and data
// {"n":<n>,"pad":"xxx…"}, padded so the whole event JSON is EventBytes long.
type FirehoseConfig struct {
	// ID is the stream id. "" = generated ("fh_" + hex).
	ID string `json:"id,omitempty"`
	// EventBytes is the size of each event's JSON. Default 1024. An event
	// cannot be smaller than its envelope (about 250 bytes): smaller values
	// give the smallest event.
	EventBytes int `json:"eventBytes,omitempty"`
	// Rate is events per second on each connection. 0 = as fast as the
	// client reads.
	Rate float64 `json:"rate,omitempty"`
	// Count is the number of events in the stream. 0 = unlimited. A
	// connection that has read them all is ended (SSE: end of the response;
	// WebSocket: close 1000), and one whose cursor is at the end is answered
	// 204 No Content.
	Count int64 `json:"count,omitempty"`
	// Secret signs the events. "" = generated.
	Secret string `json:"secret,omitempty"`
	// StartID is the event_id before the first event. Default: the creation
	// time in epoch milliseconds.
	StartID int64 `json:"startId,omitempty"`
}

func (c *FirehoseConfig) validate() error {
	switch {
	case c.EventBytes < 0:
		return errors.New("eventBytes must not be negative")
	case c.EventBytes > 64<<20:
		return errors.New("eventBytes must be at most 67108864")
	case c.Rate < 0:
		return errors.New("rate must not be negative")
	case c.Count < 0:
		return errors.New("count must not be negative")
	case c.StartID < 0:
		return errors.New("startId must not be negative")
	}
	return nil
}

type firehose struct {
	cfg FirehoseConfig
}

// padChunk is the padding every firehose event copies from, in pieces: a
// firehose holds no buffer of its event size.
var padChunk = func() []byte {
	b := make([]byte, 64<<10)
	for i := range b {
		b[i] = 'x'
	}
	return b
}()

// errFirehoseBusy answers a firehose connection beyond Options.MaxFirehoseBytes.
var errFirehoseBusy = errors.New("the firehose connections use the emulator's memory budget (MaxFirehoseBytes): retry later")

// memory is what one connection of f reserves: its largest batch.
func (f *firehose) memory() int64 { return int64(f.cfg.EventBytes) + fhBatchBytes + 4<<10 }

func newFirehose(cfg FirehoseConfig) *firehose {
	if cfg.EventBytes == 0 {
		cfg.EventBytes = 1024
	}
	if cfg.StartID == 0 {
		cfg.StartID = time.Now().UnixMilli()
	}
	return &firehose{cfg: cfg}
}

// source returns a generator for one connection reading from pos.
func (f *firehose) source(secret string, pos position) (eventSource, bool) {
	n := int64(1)
	switch pos.kind {
	case posAfter:
		n = pos.value - f.cfg.StartID + 1
	case posFrom:
		n = pos.value - f.cfg.StartID
	}
	n = max(n, 1)
	if f.cfg.Count > 0 && n > f.cfg.Count {
		return nil, true
	}
	s := &fhSource{f: f, n: n, first: n, mac: hmac.New(sha256.New, []byte(secret)), attempt: newAttemptID(), release: func() {}}
	s.fixed = len(s.appendEvent(nil, -1, time.Time{}, 0))
	return s, false
}

// fhSource generates a firehose's events for one connection.
type fhSource struct {
	f       *firehose
	n       int64 // next event number
	first   int64
	mac     hash.Hash
	attempt string
	fixed   int // event size without the counter, id and padding
	arena   []byte
	t0      time.Time
	timer   *time.Timer
	sum     [sha256.Size]byte
	sig     [2 * sha256.Size]byte
	release func() // gives back the connection's memory reservation
}

// fhBatchBytes bounds the bytes generated per batch.
const fhBatchBytes = 256 << 10

func (s *fhSource) next(buf []outEvent) (int, wakeup, bool) {
	cfg := &s.f.cfg
	if cfg.Count > 0 && s.n > cfg.Count {
		return 0, wakeup{}, true
	}
	k := int64(len(buf))
	now := time.Now()
	if cfg.Rate > 0 {
		if s.t0.IsZero() {
			s.t0 = now
		}
		produced := s.n - s.first
		due := int64(now.Sub(s.t0).Seconds()*cfg.Rate) + 1 - produced
		if due <= 0 {
			at := s.t0.Add(time.Duration(float64(produced) / cfg.Rate * float64(time.Second)))
			if s.timer == nil {
				s.timer = time.NewTimer(at.Sub(now))
			} else {
				s.timer.Reset(at.Sub(now))
			}
			return 0, wakeup{timer: s.timer.C}, false
		}
		k = min(k, due)
	}
	if cfg.Count > 0 {
		k = min(k, cfg.Count-s.n+1)
	}
	s.arena = s.arena[:0]
	i := 0
	for ; int64(i) < k && (i == 0 || len(s.arena) < fhBatchBytes); i++ {
		idNum := cfg.StartID + s.n
		start := len(s.arena)
		s.arena = s.appendEvent(s.arena, s.n, now, idNum)
		buf[i] = outEvent{id: strconv.FormatInt(idNum, 10), typ: "update", b: s.arena[start:len(s.arena):len(s.arena)]}
		s.n++
	}
	return i, wakeup{}, false
}

// appendEvent appends event n. n < 0 measures the fixed part.
func (s *fhSource) appendEvent(dst []byte, n int64, now time.Time, id int64) []byte {
	dst = append(dst, `{"type":"update","meta":{"timestamp":"`...)
	dst = now.UTC().AppendFormat(dst, timestampLayout)
	dst = append(dst, `","attempt_id":"`...)
	dst = append(dst, s.attempt...)
	dst = append(dst, `","status":200,"latency_ms":0,"payload_mode_fallback":null},"data":`...)
	ds := len(dst)
	dst = append(dst, `{"n":`...)
	if n >= 0 {
		dst = strconv.AppendInt(dst, n, 10)
	}
	dst = append(dst, `,"pad":"`...)
	if n >= 0 {
		p := s.f.cfg.EventBytes - s.fixed - len(strconv.AppendInt(s.sum[:0], n, 10)) - len(strconv.AppendInt(s.sum[:0], id, 10))
		for p > 0 {
			k := min(p, len(padChunk))
			dst = append(dst, padChunk[:k]...)
			p -= k
		}
	}
	dst = append(dst, `"}`...)
	s.mac.Reset()
	s.mac.Write(dst[ds:])
	hex.Encode(s.sig[:], s.mac.Sum(s.sum[:0]))
	dst = append(dst, `,"error":null,"signature":"`...)
	dst = append(dst, s.sig[:]...)
	dst = append(dst, `","event_id":"`...)
	if n >= 0 {
		dst = strconv.AppendInt(dst, id, 10)
	}
	return append(dst, `"}`...)
}

func (s *fhSource) stop() {
	if s.timer != nil {
		s.timer.Stop()
	}
	s.arena = nil
	s.release()
	s.release = func() {}
}
