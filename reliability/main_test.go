package reliability

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"testing"
	"time"
)

// The secrets of the suite. Every byte of output a test sees (logs, errors,
// check output, metrics) is scanned for each of them.
const (
	apiKey        = "rs_rel0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9"
	hmacSecretA   = "hmac-rel-secret-alpha-5c1e9d"
	hmacSecretB   = "hmac-rel-secret-bravo-77ab30"
	natsToken     = "nats-rel-token-3f9a8e7d6c5b"
	kafkaPassword = "kafka-rel-password-e4d3c2b1"
)

var allSecrets = []string{apiKey, hmacSecretA, hmacSecretB, natsToken, kafkaPassword}

var reportFlag = flag.String("reliability.report", "", "write the results table as Markdown to this file (and JSON to FILE.json)")

// full reports whether the full numbers run (INGEST_RELIABILITY=full).
func full() bool { return os.Getenv("INGEST_RELIABILITY") == "full" }

// scale picks the default (shortened) or the full figure.
func scale[T any](short, long T) T {
	if full() {
		return long
	}
	return short
}

func mode() string { return scale("short", "full") }

// binary is the ingest binary under test, built once by TestMain.
var binary string

func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "ingest-reliability-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "ingest")
	build := exec.Command("go", "build", "-o", binary, "github.com/restless-stream/ingest/cmd/ingest")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building cmd/ingest: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	if path := reportPath(); path != "" {
		if err := writeReport(path); err != nil {
			fmt.Fprintln(os.Stderr, "writing the report:", err)
			code = 1
		}
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// Row is one line of the results table.
type Row struct {
	Scenario   string  `json:"scenario"`
	Runs       int     `json:"runs"` // faults injected (drops, kills, outages, cases)
	Sent       int64   `json:"sent"` // distinct events the upstream offered that must land
	InBroker   int64   `json:"in_broker"`
	Lost       int64   `json:"lost"`
	Duplicated int64   `json:"duplicated"`
	Bound      string  `json:"bound,omitempty"` // what the guarantee allows
	Mode       string  `json:"mode"`
	Seconds    float64 `json:"seconds"`
	Passed     bool    `json:"passed"`
}

var (
	rowsMu sync.Mutex
	rows   []Row
)

// record adds a row to the report once the test has finished (so Passed is
// known).
func record(t *testing.T, r Row) {
	t.Helper()
	start := time.Now()
	if v, ok := testStart.Load(t.Name()); ok {
		start = v.(time.Time)
	}
	t.Cleanup(func() {
		r.Mode = mode()
		r.Passed = !t.Failed()
		r.Seconds = time.Since(start).Round(100 * time.Millisecond).Seconds()
		rowsMu.Lock()
		rows = append(rows, r)
		rowsMu.Unlock()
	})
}

var testStart sync.Map

// begin marks the start of a scenario for the report's wall time.
func begin(t *testing.T) {
	testStart.Store(t.Name(), time.Now())
}

func reportPath() string {
	if *reportFlag != "" {
		return *reportFlag
	}
	return os.Getenv("INGEST_RELIABILITY_REPORT")
}

func writeReport(path string) error {
	rowsMu.Lock()
	defer rowsMu.Unlock()
	var b bytes.Buffer
	fmt.Fprintf(&b, "Mode `%s`, %s, %s/%s, %d CPUs, %s.\n\n", mode(), runtime.Version(), runtime.GOOS, runtime.GOARCH,
		runtime.NumCPU(), time.Now().UTC().Format("2006-01-02 15:04 MST"))
	b.WriteString("| Scenario | Runs | Events sent | In broker | Lost | Duplicated | Allowed | Wall time | Result |\n")
	b.WriteString("| --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | --- |\n")
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].Scenario < rows[j].Scenario })
	for _, r := range rows {
		res := "pass"
		if !r.Passed {
			res = "**FAIL**"
		}
		bound := r.Bound
		if bound == "" {
			bound = "0 lost, 0 duplicated"
		}
		nums := fmt.Sprintf("%d | %d | %d | %d", r.Sent, r.InBroker, r.Lost, r.Duplicated)
		if r.Sent == 0 && r.InBroker == 0 {
			nums = "– | – | – | –" // no events: a configuration or output check
		}
		fmt.Fprintf(&b, "| %s | %d | %s | %s | %.1f s | %s |\n", r.Scenario, r.Runs, nums, bound, r.Seconds, res)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		return err
	}
	j, err := json.MarshalIndent(rows, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path+".json", append(j, '\n'), 0o644)
}
