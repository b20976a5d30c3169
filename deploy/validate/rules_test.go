package validate

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

type ruleFile struct {
	Groups []struct {
		Name  string `json:"name"`
		Rules []struct {
			Alert       string            `json:"alert"`
			Record      string            `json:"record"`
			Expr        string            `json:"expr"`
			For         string            `json:"for"`
			Labels      map[string]string `json:"labels"`
			Annotations map[string]string `json:"annotations"`
		} `json:"rules"`
	} `json:"groups"`
}

func readRules(t *testing.T) ruleFile {
	t.Helper()
	b, err := os.ReadFile(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	var rf ruleFile
	if err := yaml.UnmarshalStrict(b, &rf); err != nil {
		t.Fatalf("alerts.yaml: %v", err)
	}
	return rf
}

// TestPromtool runs promtool check rules and promtool test rules on the
// alerts, and promtool check config on the compose stack's Prometheus.
func TestPromtool(t *testing.T) {
	pt := promtool(t)
	for _, args := range [][]string{
		{"check", "rules", alertsFile},
		{"test", "rules", alertsTest},
		{"check", "config", filepath.Join(repoRoot, "configs", "compose", "prometheus.yml")},
	} {
		out, errOut, err := run(filepath.Dir(alertsFile), pt, nil, args...)
		if err != nil || !strings.Contains(out+errOut, "SUCCESS") {
			t.Errorf("promtool %s: %v\n%s%s", strings.Join(args, " "), err, out, errOut)
		}
	}
}

// TestAlertsTestedAndDocumented: every alert has a unit test in which it fires
// and one in which it does not, a severity, a runbook link, and a line in the
// README's "Running in Kubernetes" section.
func TestAlertsTestedAndDocumented(t *testing.T) {
	rf := readRules(t)
	b, err := os.ReadFile(alertsTest)
	if err != nil {
		t.Fatal(err)
	}
	var tests struct {
		Tests []struct {
			AlertRuleTest []struct {
				Alertname string           `json:"alertname"`
				ExpAlerts []map[string]any `json:"exp_alerts"`
			} `json:"alert_rule_test"`
		} `json:"tests"`
	}
	if err := yaml.Unmarshal(b, &tests); err != nil {
		t.Fatalf("alerts_test.yaml: %v", err)
	}
	fires, silent := map[string]bool{}, map[string]bool{}
	for _, tc := range tests.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname] = true
			} else {
				silent[a.Alertname] = true
			}
		}
	}
	readme, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	section := regexp.MustCompile(`(?s)\n## Running in Kubernetes\n(.*?)(\n## |$)`).FindSubmatch(readme)
	if section == nil {
		t.Fatal(`README.md has no "## Running in Kubernetes" section`)
	}
	var alerts int
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			alerts++
			if !fires[r.Alert] || !silent[r.Alert] {
				t.Errorf("%s: alerts_test.yaml has a case where it fires: %v, where it does not: %v", r.Alert, fires[r.Alert], silent[r.Alert])
			}
			if s := r.Labels["severity"]; s != "critical" && s != "warning" {
				t.Errorf("%s: severity %q", r.Alert, s)
			}
			if !strings.HasPrefix(r.Annotations["runbook_url"], "https://") || r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("%s: summary, description and runbook_url wanted: %v", r.Alert, r.Annotations)
			}
			if !regexp.MustCompile("(?m)^\\| `" + r.Alert + "` \\|").Match(section[1]) {
				t.Errorf("%s: no runbook line (| `%s` | …) in the README's Running in Kubernetes section", r.Alert, r.Alert)
			}
		}
	}
	if alerts == 0 {
		t.Fatal("alerts.yaml has no alert")
	}
}
