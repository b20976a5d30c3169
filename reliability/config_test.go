package reliability

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// checkConfig runs `ingest check -c` on yaml with env and returns the exit
// code and the combined output.
func checkConfig(t *testing.T, yaml string, env map[string]string) (int, string) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "ingest.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	p := start(t, 30*time.Second, env, "check", "-c", path)
	code := p.wait(30 * time.Second)
	return code, p.stdout.String() + p.stderr.String()
}

const okStream = "streams: [{name: orders, stream_id: s1}]\n"

// TestBadConfiguration runs `ingest check` over the classic mistakes: each
// must exit 2 with a message that names the key at fault.
func TestBadConfiguration(t *testing.T) {
	begin(t)
	cases := []struct {
		name, yaml string
		env        map[string]string
		key, says  string
	}{
		{"no streams", "sink: {type: stdout}\n", nil, "streams", ""},
		{"stream without a name", "streams: [{stream_id: s1}]\n", nil, "streams[0].name", ""},
		{"name with capitals", "streams: [{name: Orders, stream_id: s1}]\n", nil, "streams[0].name", ""},
		{"duplicate names", "streams: [{name: a, stream_id: s1}, {name: a, stream_id: s2}]\n", nil, "streams[1].name", "duplicates"},
		{"two targets", "streams: [{name: a, stream_id: s1, url: 'http://x/'}]\n", nil, "streams[0]", "stream_id and url"},
		{"no target", "streams: [{name: a}]\n", nil, "streams[0]", "no target"},
		{"misspelt key", "streams: [{name: a, stream_idd: s1}]\n", nil, "streams[0].stream_idd", "unknown key"},
		{"misspelt section", okStream + "sinks: {type: kafka}\n", nil, "sinks", "unknown key"},
		{"duration without unit", "streams: [{name: a, stream_id: s1, idle_timeout: 5}]\n", nil, "streams[0].idle_timeout", "duration"},
		{"unknown transport", "streams: [{name: a, stream_id: s1, transport: grpc}]\n", nil, "streams[0].transport", "grpc"},
		{"require without secrets", "streams: [{name: a, stream_id: s1, verify: {mode: require}}]\n", nil, "streams[0].verify", ""},
		{"unknown verify mode", "streams: [{name: a, stream_id: s1, verify: {secrets: [x1234], mode: sometimes}}]\n", nil, "streams[0].verify.mode", ""},
		{"zero max_event_bytes", "streams: [{name: a, stream_id: s1, max_event_bytes: 0}]\n", nil, "streams[0].max_event_bytes", ""},
		{"ftp url", "streams: [{name: a, url: 'ftp://x/'}]\n", nil, "streams[0].url", "ftp"},
		{"unknown sink", okStream + "sink: {type: rabbitmq}\n", nil, "sink.type", "rabbitmq"},
		{"unknown sink from the environment", okStream, map[string]string{"INGEST_SINK__TYPE": "rabbitmq"}, "sink.type", "rabbitmq"},
		{"kafka acks", okStream + "sink: {type: kafka, kafka: {required_acks: some}}\n", nil, "sink.kafka.required_acks", ""},
		{"kafka compression", okStream + "sink: {type: kafka, kafka: {compression: brotli}}\n", nil, "sink.kafka.compression", ""},
		{"kafka key", okStream + "sink: {type: kafka, kafka: {key: random}}\n", nil, "sink.kafka.key", ""},
		{"kafka SASL without password", okStream + "sink: {type: kafka, kafka: {sasl: {mechanism: plain, username: u}}}\n", nil, "sink.kafka.sasl.password", ""},
		{"kafka SASL mechanism", okStream + "sink: {type: kafka, kafka: {sasl: {mechanism: kerberos, username: u, password: p1234}}}\n", nil, "sink.kafka.sasl.mechanism", ""},
		{"unknown checkpoint", okStream + "checkpoint: {type: redis}\n", nil, "checkpoint.type", "redis"},
		{"nats_kv checkpoint with kafka", okStream + "sink: {type: kafka}\ncheckpoint: {type: nats_kv}\n", nil, "checkpoint.type", "nats_kv"},
		{"negative batch", okStream + "pipeline: {batch: {max_events: -1}}\n", nil, "pipeline.batch.max_events", ""},
		{"negative dedupe ttl", okStream + "pipeline: {dedupe: {ttl: -1h}}\n", nil, "pipeline.dedupe.ttl", ""},
		{"log level", okStream + "log: {level: loud}\n", nil, "log.level", "loud"},
		{"log format", okStream + "log: {format: xml}\n", nil, "log.format", "xml"},
		{"file sink without path", okStream + "sink: {type: file, file: {path: ''}}\n", nil, "sink.file.path", ""},
		{"YAML syntax", "streams: [\n", nil, "ingest.yaml", "YAML"},
		{"tab indentation", "streams:\n\t- name: a\n", nil, "ingest.yaml", "YAML"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out := checkConfig(t, c.yaml, c.env)
			if code != 2 {
				t.Fatalf("exit code %d, want 2\n%s", code, out)
			}
			if !strings.Contains(out, c.key+":") && !strings.Contains(out, c.key+".") {
				t.Errorf("the message does not name %s:\n%s", c.key, out)
			}
			if c.says != "" && !strings.Contains(out, c.says) {
				t.Errorf("the message does not say %q:\n%s", c.says, out)
			}
		})
	}
	record(t, Row{Scenario: "6. Bad configuration: `ingest check` on the classic mistakes (exit 2, key named)", Runs: len(cases),
		Bound: "every mistake rejected with its key"})
}

var rejectionLine = regexp.MustCompile(`^  \S.*: \S`)

// FuzzCheck runs `ingest check` on arbitrary YAML: it must never panic, must
// exit 0 or 2, and every rejection must start with the key (or the file) at
// fault. The loader's own in-process fuzz target is cmd/ingest's
// FuzzLoadConfig; this one goes through the binary, environment and all.
func FuzzCheck(f *testing.F) {
	for _, s := range []string{
		okStream,
		"streams: [{name: a, direct: {url: 'https://x/', body: {a: [1, 2]}}}]\n",
		"streams: [{name: a, url: 'ws://x/', transport: websocket, idle_timeout: 1h}]\nsink: {type: kafka, kafka: {brokers: [a:1]}}\n",
		"streams:\n  - name: ${X:-y}\n    stream_id: '$${z}'\n",
		"? [a]\n: b\n",
		"streams: [{name: a, stream_id: s, reconnect: {initial: 1s, max: 10ms, max_attempts: -3}}]\n",
		"restless: {api_key: " + apiKey + "}\n" + okStream,
		"streams: {name: a}\n",
		"streams: [[]]\n",
		"\xff\xfe",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, yaml string) {
		code, out := checkConfig(t, yaml, nil)
		if strings.Contains(out, "panic") || strings.Contains(out, "goroutine ") {
			t.Fatalf("check panicked:\n%s", out)
		}
		switch code {
		case 0:
		case 2:
			lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
			if len(lines) < 2 || lines[0] != "ingest: invalid configuration:" || !rejectionLine.MatchString(lines[1]) {
				t.Fatalf("rejection does not name a key:\n%s", out)
			}
		default:
			t.Fatalf("exit code %d, want 0 or 2:\n%s", code, out)
		}
	})
}
