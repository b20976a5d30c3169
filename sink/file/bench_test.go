package file

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/restless-stream/ingest"
)

const benchBatch = 512

func benchRecords() []ingest.Record {
	value := `{"type":"update","meta":{"timestamp":"2026-11-26T10:00:00Z","status":200},"event_id":"%d","data":{"pad":"` + strings.Repeat("x", 850) + `"}}`
	recs := make([]ingest.Record, benchBatch)
	for i := range recs {
		recs[i] = ingest.Record{
			Dest: "restless.bench", Key: []byte("bench"),
			Headers: []ingest.Header{
				{Key: "restless-stream", Value: "bench"},
				{Key: "restless-event-id", Value: fmt.Sprint(i)},
				{Key: "restless-event-type", Value: "update"},
				{Key: "restless-timestamp", Value: "2026-11-26T10:00:00Z"},
				{Key: "restless-verified", Value: "true"},
				{Key: "content-type", Value: "application/json"},
			},
			Value:     fmt.Appendf(nil, value, i),
			JSONValue: true,
		}
	}
	return recs
}

// BenchmarkFileSink writes batches of 512 ~1 KiB records with an fsync per batch.
func BenchmarkFileSink(b *testing.B) {
	recs := benchRecords()
	s, err := New(filepath.Join(b.TempDir(), "f"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close(context.Background())
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := s.Write(context.Background(), recs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*benchBatch)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkFileRaw is the raw bound: the same bytes, pre-encoded, written
// and synced with the os package.
func BenchmarkFileRaw(b *testing.B) {
	recs := benchRecords()
	var e encoder
	var buf []byte
	for i := range recs {
		buf = e.appendLine(buf, &recs[i])
	}
	f, err := os.OpenFile(filepath.Join(b.TempDir(), "f"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := f.Write(buf); err != nil {
			b.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*benchBatch)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkEncode measures the line encoding alone.
func BenchmarkEncode(b *testing.B) {
	recs := benchRecords()
	var e encoder
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf = buf[:0]
		for i := range recs {
			buf = e.appendLine(buf, &recs[i])
		}
	}
	b.SetBytes(int64(len(buf)))
}
