package main

import (
	"context"
	"net"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
	"go.yaml.in/yaml/v3"
)

// repoRoot is the module root, two levels above this package.
func repoRoot(t testing.TB) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// TestComposeFile loads docker-compose.yml with the compose-spec loader (as
// `docker compose config` would) and checks its services, images, ports,
// healthchecks and the configuration files it mounts, which must pass check.
func TestComposeFile(t *testing.T) {
	root := repoRoot(t)
	load := func(env types.Mapping) (*types.Project, error) {
		details := types.ConfigDetails{
			WorkingDir:  root,
			ConfigFiles: []types.ConfigFile{{Filename: filepath.Join(root, "docker-compose.yml")}},
			Environment: env,
		}
		return loader.LoadWithContext(context.Background(), details, func(o *loader.Options) {
			o.SetProjectName("restless-ingest", true)
			o.SkipResolveEnvironment = false
		})
	}
	// No well-known default key: without RESTLESS_API_KEY the file does not load.
	if _, err := load(types.Mapping{}); err == nil || !strings.Contains(err.Error(), "RESTLESS_API_KEY") {
		t.Errorf("docker-compose.yml loads without RESTLESS_API_KEY (%v): it must require a key", err)
	}
	const key = "rs_compose_test_4b1d"
	project, err := load(types.Mapping{"RESTLESS_API_KEY": key})
	if err != nil {
		t.Fatalf("docker-compose.yml does not load: %v", err)
	}
	for _, name := range []string{"emulator", "ingest-nats", "ingest-kafka"} {
		if v := project.Services[name].Environment["RESTLESS_API_KEY"]; v == nil || *v != key {
			t.Errorf("%s: RESTLESS_API_KEY is %v, want the one given", name, v)
		}
	}
	want := map[string]struct {
		image string
		port  uint32 // a published port, 0 = none required
	}{
		"emulator":     {"restless-ingest:local", 8787},
		"nats":         {"nats:", 4222},
		"kafka":        {"apache/kafka:", 9094},
		"ingest-nats":  {"restless-ingest:local", 9464},
		"ingest-kafka": {"restless-ingest:local", 9464},
		"prometheus":   {"prom/prometheus:", 9090},
		"grafana":      {"grafana/grafana:", 3000},
	}
	for name, w := range want {
		svc, ok := project.Services[name]
		if !ok {
			t.Errorf("service %s missing", name)
			continue
		}
		if !strings.HasPrefix(svc.Image, w.image) {
			t.Errorf("%s: image %q, want %s…", name, svc.Image, w.image)
		}
		if svc.HealthCheck == nil || len(svc.HealthCheck.Test) == 0 {
			t.Errorf("%s: no healthcheck", name)
		}
		found := false
		for _, p := range svc.Ports {
			found = found || p.Target == w.port
		}
		if !found {
			t.Errorf("%s: port %d not published (ports %+v)", name, w.port, svc.Ports)
		}
	}
	// Every published port listens on loopback only, and every bind-mounted
	// file or directory exists.
	for name, svc := range project.Services {
		for _, p := range svc.Ports {
			if p.Published != "" && p.HostIP != "127.0.0.1" {
				t.Errorf("%s: port %s:%d is published on %q, not 127.0.0.1", name, p.Published, p.Target, p.HostIP)
			}
		}
		for _, v := range svc.Volumes {
			if v.Type == types.VolumeTypeBind {
				if _, err := os.Stat(v.Source); err != nil {
					t.Errorf("%s: mounted %s: %v", name, v.Target, err)
				}
			}
		}
	}
	checkComposeMonitoring(t, project)
	if cmd := project.Services["nats"].Command; !slices.Contains(cmd, "-js") {
		t.Errorf("nats runs without JetStream: %v", cmd)
	}
	if env := project.Services["kafka"].Environment; env["KAFKA_PROCESS_ROLES"] == nil || !strings.Contains(*env["KAFKA_PROCESS_ROLES"], "controller") {
		t.Errorf("kafka is not in KRaft mode (KAFKA_PROCESS_ROLES %v)", env["KAFKA_PROCESS_ROLES"])
	}
	for _, name := range []string{"ingest-nats", "ingest-kafka"} {
		svc := project.Services[name]
		for dep, cond := range map[string]string{"emulator": "service_healthy"} {
			if d, ok := svc.DependsOn[dep]; !ok || d.Condition != cond {
				t.Errorf("%s: depends_on %s %s missing", name, dep, cond)
			}
		}
		// The -c file the command names is mounted from configs/, and passes check.
		i := slices.Index(svc.Command, "-c")
		if i < 0 || i+1 >= len(svc.Command) {
			t.Errorf("%s: command %v has no -c FILE", name, svc.Command)
			continue
		}
		target := svc.Command[i+1]
		var source string
		for _, v := range svc.Volumes {
			if v.Target == target {
				source = v.Source
			}
		}
		if source == "" {
			t.Errorf("%s: %s is not mounted", name, target)
			continue
		}
		if _, err := os.Stat(source); err != nil {
			t.Errorf("%s: mounted file: %v", name, err)
			continue
		}
		t.Setenv("RESTLESS_API_KEY", "rs_compose")
		t.Setenv("RESTLESS_DEMO_SECRET", "compose-secret")
		if _, err := LoadConfig(LoadOptions{File: source}); err != nil {
			t.Errorf("%s: %s does not pass check:\n%v", name, source, err)
		}
	}
}

// mountSource returns the host path mounted at target in svc, or "".
func mountSource(svc types.ServiceConfig, target string) string {
	for _, v := range svc.Volumes {
		if v.Target == target {
			return v.Source
		}
	}
	return ""
}

// checkComposeMonitoring checks that Prometheus scrapes the daemons of the
// compose file under the job the alerts expect and loads the alert rules, and
// that Grafana provisions that Prometheus and the dashboard.
func checkComposeMonitoring(t *testing.T, project *types.Project) {
	t.Helper()
	prom := project.Services["prometheus"]
	var promCfg struct {
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	readYAML(t, mountSource(prom, "/etc/prometheus/prometheus.yml"), &promCfg)
	scraped := map[string]bool{}
	for _, sc := range promCfg.ScrapeConfigs {
		for _, st := range sc.StaticConfigs {
			for _, target := range st.Targets {
				host, port, err := net.SplitHostPort(target)
				svc, ok := project.Services[host]
				if err != nil || !ok {
					t.Errorf("prometheus: target %q is not a service of the compose file", target)
					continue
				}
				listens := false
				for _, p := range svc.Ports {
					listens = listens || port == strconv.FormatUint(uint64(p.Target), 10)
				}
				if !listens {
					t.Errorf("prometheus: target %q: %s has no port %s", target, host, port)
				}
				if sc.JobName == "restless-ingest" {
					scraped[host] = true
				}
			}
		}
	}
	for _, name := range []string{"ingest-nats", "ingest-kafka"} {
		if !scraped[name] {
			t.Errorf("prometheus does not scrape %s under job restless-ingest", name)
		}
	}
	rulesMounted := false
	for _, glob := range promCfg.RuleFiles {
		for _, v := range prom.Volumes {
			ok, _ := path.Match(glob, v.Target)
			rulesMounted = rulesMounted || (ok && strings.HasSuffix(v.Source, filepath.Join("deploy", "prometheus", "alerts.yaml")))
		}
	}
	if !rulesMounted {
		t.Errorf("prometheus: deploy/prometheus/alerts.yaml is not mounted where rule_files %v reads", promCfg.RuleFiles)
	}

	graf := project.Services["grafana"]
	var ds struct {
		Datasources []struct {
			Type string `yaml:"type"`
			URL  string `yaml:"url"`
		} `yaml:"datasources"`
	}
	readYAML(t, mountSource(graf, "/etc/grafana/provisioning/datasources/restless-ingest.yaml"), &ds)
	if len(ds.Datasources) != 1 || ds.Datasources[0].Type != "prometheus" || ds.Datasources[0].URL != "http://prometheus:9090" {
		t.Errorf("grafana: data sources %+v, want the compose file's prometheus", ds.Datasources)
	}
	var dash struct {
		Providers []struct {
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	readYAML(t, mountSource(graf, "/etc/grafana/provisioning/dashboards/restless-ingest.yaml"), &dash)
	if len(dash.Providers) != 1 {
		t.Fatalf("grafana: %d dashboard providers, want 1", len(dash.Providers))
	}
	src := mountSource(graf, path.Join(dash.Providers[0].Options.Path, "restless-ingest.json"))
	if !strings.HasSuffix(src, filepath.Join("deploy", "grafana", "restless-ingest.json")) {
		t.Errorf("grafana: the dashboard provider's path %s does not hold deploy/grafana/restless-ingest.json (mounted: %q)", dash.Providers[0].Options.Path, src)
	}
}

// readYAML decodes the YAML file into v, failing the test on error.
func readYAML(t *testing.T, file string, v any) {
	t.Helper()
	if file == "" {
		t.Fatal("file not mounted")
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
}
