package kafka

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"testing"
	"time"

	"github.com/restless-stream/ingest/internal/testenv"
)

// TestKcatReadsOurRecords consumes what the sink wrote with kcat
// (librdkafka), so a non-Go client is known to read our keys, headers and
// values. CI installs Debian's kcat.
func TestKcatReadsOurRecords(t *testing.T) {
	kcat := testenv.Tool(t, "kcat")
	for _, codec := range []Compression{CompressionNone, CompressionGzip, CompressionSnappy, CompressionLZ4, CompressionZstd} {
		t.Run(codec.String(), func(t *testing.T) {
			_, addr := newCluster(t)
			s := newSink(t, Config{Brokers: []string{addr}, Compression: codec})
			recs := records(testTopic, []string{"orders", "users"}, 20)
			recs[3].Value = []byte("not json, with\ttab and é")
			if err := s.Write(context.Background(), recs); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, kcat, "-C", "-q", "-b", addr, "-t", testTopic, "-o", "beginning", "-e", "-J")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("kcat: %v: %s", err, stderr.Bytes())
			}
			type kcatMsg struct {
				Partition int32    `json:"partition"`
				Key       *string  `json:"key"`
				Payload   string   `json:"payload"`
				Headers   []string `json:"headers"`
			}
			byID := make(map[string]kcatMsg)
			sc := bufio.NewScanner(bytes.NewReader(out))
			for sc.Scan() {
				var m kcatMsg
				if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
					t.Fatalf("kcat line %q: %v", sc.Bytes(), err)
				}
				var id string
				for i := 0; i+1 < len(m.Headers); i += 2 {
					if m.Headers[i] == "restless-event-id" {
						id = m.Headers[i+1]
					}
				}
				if _, dup := byID[id]; dup {
					t.Fatalf("kcat read record %s twice", id)
				}
				byID[id] = m
			}
			if len(byID) != len(recs) {
				t.Fatalf("kcat read %d records, want %d:\n%s", len(byID), len(recs), out)
			}
			for _, r := range recs {
				id, _ := r.Header("restless-event-id")
				m := byID[id]
				if m.Payload != string(r.Value) || m.Key == nil || *m.Key != string(r.Key) {
					t.Fatalf("record %s read by kcat as key %v payload %q", id, m.Key, m.Payload)
				}
				if len(m.Headers) != 2*len(r.Headers) {
					t.Fatalf("record %s: kcat headers %q", id, m.Headers)
				}
				for i, h := range r.Headers {
					if m.Headers[2*i] != h.Key || m.Headers[2*i+1] != h.Value {
						t.Fatalf("record %s header %d read as %s=%s, want %s=%s", id, i, m.Headers[2*i], m.Headers[2*i+1], h.Key, h.Value)
					}
				}
			}
		})
	}
}
