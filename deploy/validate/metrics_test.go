package validate

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

// Labels that Prometheus adds to every scraped series (static configs, the
// Prometheus Operator's relabelling); not in /metrics, usable everywhere.
var targetLabels = []string{"job", "instance", "namespace", "pod", "service", "endpoint", "container"}

// Series Prometheus makes itself for every target.
var generated = map[string]bool{"up": true}

// family is one metric of a daemon's /metrics.
type family struct {
	typ    dto.MetricType
	labels map[string]bool
}

// scrapeDaemons runs `ingest emulate` and two daemons on it, each with two
// streams: a single process (file sink and checkpoints) and a replica in
// cluster mode (an embedded NATS server with JetStream, nats_kv checkpoints).
// It waits until each has published events and saved a checkpoint, and the
// replica has joined and owns its streams, and returns the metric families of
// both /metrics together.
func scrapeDaemons(t *testing.T) map[string]family {
	t.Helper()
	bin := ingestBinary(t)
	const apiKey, demoSecret = "rs_validate_3b1f0e9d8c7a6b5c4d3e2f1a", "validate-demo-secret"
	em := start(t, cleanEnv(nil), bin, "emulate", "--addr", "127.0.0.1:0", "--api-key", apiKey, "--demo-secret", demoSecret)
	emURL := em.waitFor(t, regexp.MustCompile(`listening on (http://127\.0\.0\.1:\d+)`), 30*time.Second)[1]

	dir := t.TempDir()
	streams := `
restless: {base_url: %[1]s, stream_base_url: %[1]s}
streams:
  - name: orders
    stream_id: demo
    verify: {secrets: ["${DEMO_SECRET}"]}
  - name: orders_ws
    transport: websocket
    stream_id: demo
    verify: {secrets: ["${DEMO_SECRET}"]}
http: {addr: "127.0.0.1:0"}
log: {level: info, format: json}
`
	single := fmt.Sprintf(streams+`
sink: {type: file, file: {path: %[2]s}}
checkpoint: {type: file, dir: %[3]s}
`, emURL, filepath.Join(dir, "events.jsonl"), filepath.Join(dir, "checkpoints"))
	replica := fmt.Sprintf(streams+`
sink:
  type: nats
  nats: {embedded: true, embedded_port: 0, embedded_dir: %[2]s, jetstream: true, stream: VALIDATE}
checkpoint: {type: nats_kv}
cluster: {enabled: true, name: validate, member: replica-0, lease_ttl: 5s}
`, emURL, filepath.Join(dir, "nats"))

	out := map[string]family{}
	for _, d := range []struct {
		name, config string
		ready        func(map[string]*dto.MetricFamily) bool
	}{
		{"single", single, func(map[string]*dto.MetricFamily) bool { return true }},
		{"replica", replica, func(fams map[string]*dto.MetricFamily) bool {
			return gauge(fams, "ingest_cluster_members") >= 1 && gauge(fams, "ingest_streams_owned") >= 2
		}},
	} {
		cfg := filepath.Join(dir, d.name+".yaml")
		if err := os.WriteFile(cfg, []byte(d.config), 0o600); err != nil {
			t.Fatal(err)
		}
		p := start(t, cleanEnv(map[string]string{"RESTLESS_API_KEY": apiKey, "DEMO_SECRET": demoSecret}), bin, "run", "-c", cfg)
		metricsURL := p.waitFor(t, regexp.MustCompile(`"http":"(http://127\.0\.0\.1:\d+)"`), 30*time.Second)[1] + "/metrics"
		deadline := time.Now().Add(60 * time.Second)
		for {
			fams, err := scrape(metricsURL)
			if err == nil && published(fams) >= 2 && fams["ingest_checkpoint_cursor_age_seconds"] != nil && d.ready(fams) {
				for name, mf := range fams {
					f, ok := out[name]
					if !ok {
						f = family{typ: mf.GetType(), labels: map[string]bool{}}
					}
					for _, m := range mf.GetMetric() {
						for _, l := range m.GetLabel() {
							f.labels[l.GetName()] = true
						}
					}
					out[name] = f
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s daemon: no published events, checkpoint and cluster membership on %s within 60s (last error %v)", d.name, metricsURL, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	return out
}

// gauge is the sum of a gauge family's series, or -1 without any.
func gauge(fams map[string]*dto.MetricFamily, name string) float64 {
	mf := fams[name]
	if mf == nil || len(mf.GetMetric()) == 0 {
		return -1
	}
	var n float64
	for _, m := range mf.GetMetric() {
		n += m.GetGauge().GetValue()
	}
	return n
}

func scrape(url string) (map[string]*dto.MetricFamily, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(resp.Body)
}

func published(fams map[string]*dto.MetricFamily) float64 {
	var n float64
	if mf := fams["ingest_events_published_total"]; mf != nil {
		for _, m := range mf.GetMetric() {
			n += m.GetCounter().GetValue()
		}
	}
	return n
}

// grafanaVars replaces the dashboard's variables by what Prometheus would
// get: an interval for the interval variables; $job and the like stay inside
// their quoted regexps.
var grafanaVars = strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$__range", "1h")

// expression is one PromQL expression and where it comes from.
type expression struct{ where, expr string }

func expressions(t *testing.T) []expression {
	t.Helper()
	var out []expression
	for _, g := range readRules(t).Groups {
		for _, r := range g.Rules {
			out = append(out, expression{"alerts.yaml " + r.Alert + r.Record, r.Expr})
		}
	}
	d := readDashboard(t)
	for _, p := range allPanels(d.Panels) {
		for _, tg := range p.Targets {
			out = append(out, expression{fmt.Sprintf("dashboard panel %q %s", p.Title, tg.RefID), grafanaVars.Replace(tg.Expr)})
		}
	}
	labelValues := regexp.MustCompile(`^label_values\((.+),\s*([A-Za-z_][A-Za-z0-9_]*)\)$`)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		m := labelValues.FindStringSubmatch(v.Definition)
		if m == nil {
			t.Errorf("dashboard variable %s: %q is not label_values(selector, label)", v.Name, v.Definition)
			continue
		}
		// The variable's label must be on the selected series: count by it.
		out = append(out, expression{"dashboard variable " + v.Name, fmt.Sprintf("count by (%s) (%s)", m[2], m[1])})
	}
	return out
}

// metricName is the metric a selector names, or "".
func metricName(vs *parser.VectorSelector) string {
	if vs.Name != "" {
		return vs.Name
	}
	for _, m := range vs.LabelMatchers {
		if m.Name == model.MetricNameLabel && m.Type == labels.MatchEqual {
			return m.Value
		}
	}
	return ""
}

// resolve maps a series name to its family in /metrics: histogram and summary
// series (_bucket, _sum, _count) to their base name.
func resolve(fams map[string]family, name string) (family, bool) {
	if f, ok := fams[name]; ok {
		return f, true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		base, ok := strings.CutSuffix(name, suffix)
		if !ok {
			continue
		}
		f, ok := fams[base]
		if ok && (f.typ == dto.MetricType_HISTOGRAM || (suffix != "_bucket" && f.typ == dto.MetricType_SUMMARY)) {
			if suffix == "_bucket" {
				f.labels = mapsWith(f.labels, "le")
			}
			return f, true
		}
	}
	if generated[name] {
		return family{labels: map[string]bool{}}, true
	}
	return family{}, false
}

func mapsWith(m map[string]bool, k string) map[string]bool {
	out := map[string]bool{k: true}
	for l := range m {
		out[l] = true
	}
	return out
}

// TestMetricNamesExist parses every PromQL expression of the alerts and the
// dashboard with Prometheus's own parser, and checks each metric it selects,
// each label it matches on and each label it groups by against running
// daemons' /metrics: one alone, one a replica in cluster mode.
func TestMetricNamesExist(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the daemon")
	}
	exprs := expressions(t)
	fams := scrapeDaemons(t)
	p := parser.NewParser(parser.Options{})
	used := map[string]map[string]bool{"alerts": {}, "dashboard": {}}
	for _, e := range exprs {
		node, err := p.ParseExpr(e.expr)
		if err != nil {
			t.Errorf("%s: %v\n%s", e.where, err, e.expr)
			continue
		}
		var names int
		parser.Inspect(node, func(n parser.Node, _ []parser.Node) error {
			switch n := n.(type) {
			case *parser.VectorSelector:
				name := metricName(n)
				f, ok := resolve(fams, name)
				if !ok {
					t.Errorf("%s: metric %q is not in the daemon's /metrics", e.where, name)
					return nil
				}
				names++
				kind := "dashboard"
				if strings.HasPrefix(e.where, "alerts.yaml") {
					kind = "alerts"
				}
				used[kind][name] = true
				for _, m := range n.LabelMatchers {
					if m.Name != model.MetricNameLabel && !f.labels[m.Name] && !slices.Contains(targetLabels, m.Name) {
						t.Errorf("%s: %s has no label %q", e.where, name, m.Name)
					}
				}
			case *parser.AggregateExpr:
				if n.Without {
					return nil
				}
				have := labelsUnder(fams, n.Expr)
				for _, l := range n.Grouping {
					if !have[l] && !slices.Contains(targetLabels, l) {
						t.Errorf("%s: groups by %q, which no series it aggregates has", e.where, l)
					}
				}
			}
			return nil
		})
		if names == 0 {
			t.Errorf("%s selects no metric: %s", e.where, e.expr)
		}
	}
	// What the alerts and the dashboard must cover.
	for kind, want := range map[string][]string{
		"alerts": {"ingest_source_connected", "ingest_events_received_total", "ingest_event_lag_seconds_bucket",
			"ingest_events_rejected_total", "ingest_sink_connected", "ingest_checkpoint_cursor_age_seconds",
			"ingest_cluster_members", "ingest_streams_owned", "ingest_stream_handovers_total"},
		"dashboard": {"ingest_events_received_total", "ingest_events_rejected_total", "ingest_events_duplicate_total",
			"ingest_event_lag_seconds_bucket", "ingest_checkpoint_cursor_age_seconds", "ingest_source_reconnects_total",
			"ingest_sink_publish_seconds_bucket", "ingest_source_connected",
			"ingest_cluster_members", "ingest_streams_owned", "ingest_stream_handovers_total"},
	} {
		for _, m := range want {
			if !used[kind][m] {
				t.Errorf("%s: %s is not used", kind, m)
			}
		}
	}
	if t.Failed() {
		var names []string
		for n := range fams {
			names = append(names, n)
		}
		sort.Strings(names)
		t.Logf("metrics in /metrics: %s", strings.Join(names, " "))
	}
}

// labelsUnder is every label the series selected under n can carry.
func labelsUnder(fams map[string]family, n parser.Node) map[string]bool {
	out := map[string]bool{}
	parser.Inspect(n, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			if f, ok := resolve(fams, metricName(vs)); ok {
				for l := range f.labels {
					out[l] = true
				}
			}
		}
		return nil
	})
	return out
}
